// The function app and its hosting plan. Flex Consumption (default) takes its runtime from
// functionAppConfig.runtime and reads the deployment package from a blob container with the app's
// identity; FUNCTIONS_WORKER_RUNTIME and linuxFxVersion are invalid there. Elastic Premium (the
// alternative) is configured the classic way, with those two settings. Either way the app reaches
// storage only through its user-assigned identity: the settings name the account, never a key.

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app (the app also gets azd-service-name).')
param tags object

@description('Name of the function app.')
param name string

@description('Name of the hosting plan.')
param planName string

@description('FlexConsumption (scale to zero, the default) or ElasticPremium (pre-warmed, billed per instance).')
@allowed([
  'FlexConsumption'
  'ElasticPremium'
])
param hostingPlan string = 'FlexConsumption'

@description('Python version of the Functions runtime.')
@allowed([
  '3.10'
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Flex Consumption: most instances the app may scale out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Elastic Premium: SKU of the plan.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param elasticPremiumSku string = 'EP1'

@description('Elastic Premium: most instances the plan may scale out to.')
@minValue(1)
@maxValue(100)
param maximumElasticWorkerCount int = 20

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity (selects it for identity-based connections).')
param identityClientId string

@description('Name of the storage account used for AzureWebJobsStorage and the task hub.')
param storageAccountName string

@description('Blob endpoint of that account, for example https://<account>.blob.core.windows.net/.')
param blobEndpoint string

@description('Queue endpoint of that account.')
param queueEndpoint string

@description('Table endpoint of that account.')
param tableEndpoint string

@description('URL of the blob container Flex Consumption deploys the package to.')
param deploymentContainerUrl string

@description('Name of the Application Insights component the app reports to.')
param applicationInsightsName string

@description('Settings the AOS code reads (AOS_*), added to the platform settings below.')
param aosSettings object

@description('Durable backend: AzureStorage (the task hub in the storage account) or DurableTaskScheduler.')
@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string = 'AzureStorage'

@description('DurableTaskScheduler only: endpoint of the scheduler, for example https://<name>.<region>.durabletask.io.')
param schedulerEndpoint string = ''

@description('DurableTaskScheduler only: name of the task hub in that scheduler.')
param schedulerTaskHubName string = ''

@description('True when main.bicep deploys the Azure OpenAI account: add the AOS_MODELS__default__* settings.')
param useModel bool = false

@description('deployModel only: endpoint of the Azure OpenAI account, for example https://<name>.openai.azure.com/.')
param modelEndpoint string = ''

@description('deployModel only: name of the model deployment in that account.')
param modelDeploymentName string = ''

var isFlex = hostingPlan == 'FlexConsumption'
var useScheduler = durableBackend == 'DurableTaskScheduler'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: isFlex ? 'functionapp' : 'elastic'
  sku: isFlex ? {
    name: 'FC1'
    tier: 'FlexConsumption'
  } : {
    name: elasticPremiumSku
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true
    maximumElasticWorkerCount: isFlex ? null : maximumElasticWorkerCount
  }
}

// Identity-based AzureWebJobsStorage: account and service endpoints plus the identity to use. The
// Application Insights connection string is an ingestion address and instrumentation id, not a
// secret, because local authentication is disabled on the component: ingestion needs the Entra token
// that APPLICATIONINSIGHTS_AUTHENTICATION_STRING tells the host to fetch with the same identity.
var platformSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__blobServiceUri: blobEndpoint
  AzureWebJobsStorage__queueServiceUri: queueEndpoint
  AzureWebJobsStorage__tableServiceUri: tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// Only for Elastic Premium. Without WEBSITE_CONTENTAZUREFILECONNECTIONSTRING the app runs without an
// Azure Files content share (which would need an account key); code arrives by zip deploy with a
// remote build.
var elasticPremiumSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'python'
  SCM_DO_BUILD_DURING_DEPLOYMENT: 'true'
  ENABLE_ORYX_BUILD: 'true'
}

// Only for the Durable Task Scheduler backend. host.json is the same for both backends (it names no
// storageProvider, so the Azure Storage default applies); these AzureFunctionsJobHost__* settings
// override extensions.durableTask.storageProvider in it, as documented in
// https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values.
// The connection string names the endpoint and the identity, never a secret: the host fetches an
// Entra token with the user-assigned identity (its role is in rbac.bicep).
var durableTaskSchedulerSettings = {
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${schedulerEndpoint};TaskHub=${schedulerTaskHubName};Authentication=ManagedIdentity;ClientID=${identityClientId}'
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__type: 'azureManaged'
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
}

// Only with the Azure OpenAI account (deployModel): the default model profile every agent falls back
// to (AOS_MODELS__<adapter>__*, adapter "default"). No API key: the app gets Entra tokens for the
// account with its user-assigned identity, named by CLIENT_ID (the role is in rbac.bicep). Without
// these settings the app uses its offline model.
var modelSettings = {
  AOS_MODELS__default__ENDPOINT: modelEndpoint
  AOS_MODELS__default__DEPLOYMENT: modelDeploymentName
  AOS_MODELS__default__API: 'azure_openai'
  AOS_MODELS__default__CLIENT_ID: identityClientId
}

var appSettings = union(
  aosSettings,
  platformSettings,
  isFlex ? {} : elasticPremiumSettings,
  useScheduler ? durableTaskSchedulerSettings : {},
  useModel ? modelSettings : {}
)

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    siteConfig: {
      // Flex Consumption takes the runtime from functionAppConfig.runtime and rejects linuxFxVersion.
      linuxFxVersion: isFlex ? null : 'Python|${pythonVersion}'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: isFlex ? {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    } : null
  }
}

// Publishing goes through Entra ID (azd, Core Tools and the CLI all use it); no FTP or basic-auth
// deployment credentials exist to leak.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
