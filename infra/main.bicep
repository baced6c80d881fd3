// AOS on Azure Functions: composition only. Deploys into an existing resource group (azd up asks for
// it, or az deployment group create names it). Every resource name carries a token derived from the
// resource group and environment name, so two environments never collide.
//   app/identity.bicep    user-assigned managed identity the app runs as
//   app/storage.bicep     storage account, deployment container, AOS queues and tables
//   app/monitoring.bicep  Log Analytics workspace and Application Insights
//   app/scheduler.bicep   Durable Task Scheduler and task hub (only with durableBackend=DurableTaskScheduler)
//   app/model.bicep       Azure OpenAI account and model deployment for thinking agents (unless deployModel=false)
//   app/rbac.bicep        the identity's role assignments (least privilege)
//   app/api.bicep         hosting plan and function app, identity-based settings only
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds the resource names and tags every resource.')
param environmentName string

@minLength(1)
@description('Azure region for all resources (Flex Consumption is not offered in every region).')
param location string = resourceGroup().location

@description('FlexConsumption (scale to zero, the default) or ElasticPremium (always warm, billed per instance).')
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

@description('Flex Consumption: most instances the app may scale out to (caps the bill under load).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Redundancy of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param storageSku string = 'Standard_LRS'

@description('Durable backend: AzureStorage (task hub in the storage account, the default) or DurableTaskScheduler (managed, for high throughput; docs/DEPLOY.md says when).')
@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string = 'AzureStorage'

@description('DurableTaskScheduler only: Consumption (pay per action, up to 500 actions/s) or Dedicated (billed per capacity unit, 2,000 actions/s each).')
@allowed([
  'Consumption'
  'Dedicated'
])
param schedulerSku string = 'Consumption'

@description('DurableTaskScheduler with the Dedicated SKU only: capacity units.')
@minValue(1)
@maxValue(3)
param schedulerCapacity int = 1

@description('Deploy an Azure OpenAI account and model deployment for thinking agents, with the app\'s access to it and the AOS_MODELS__default__* settings. false: none of these; agents use the offline model (or settings you add, docs/DEPLOY.md).')
param deployModel bool = true

@description('deployModel only: the model to deploy (availability differs by region and deployment type).')
param modelName string = 'gpt-4.1-mini'

@description('deployModel only: the model version.')
param modelVersion string = '2025-04-14'

@description('deployModel only: GlobalStandard (pay per token, processed in any Azure region), DataZoneStandard (within the data zone) or Standard (in the account\'s region).')
@allowed([
  'GlobalStandard'
  'DataZoneStandard'
  'Standard'
])
param modelDeploymentSku string = 'GlobalStandard'

@description('deployModel only: rate limit of the deployment in units of 1,000 tokens per minute (counts against the subscription\'s regional quota).')
@minValue(1)
@maxValue(1000)
param modelCapacity int = 10

@description('deployModel only: region of the Azure OpenAI account when the model is not offered in the app\'s region; empty means the same region as everything else.')
param modelLocation string = ''

@description('AOS_TASK_HUB: Durable Functions task hub name (host.json reads it as %AOS_TASK_HUB%).')
param aosTaskHub string = 'AOSHub'

@description('AOS_EVENTS_QUEUE: queue that carries events to agents.')
param aosEventsQueue string = 'aos-events'

@description('AOS_DEADLETTER_QUEUE: queue for messages that can never be valid.')
param aosDeadletterQueue string = 'aos-events-deadletter'

@description('AOS_AGENTS_TABLE: table indexing registered agents.')
param aosAgentsTable string = 'AOSAgents'

@description('AOS_HISTORY_TABLE: table archiving every handled event and decision.')
param aosHistoryTable string = 'AOSHistory'

@description('AOS_DEADLETTER_TABLE: table listing dead-lettered and poisoned messages for inspection and replay.')
param aosDeadletterTable string = 'AOSDeadLetters'

@description('AOS_RECENT_EVENTS: events kept in each agent\'s state (the app refuses limits whose worst-case state exceeds 32 KB).')
@minValue(1)
@maxValue(100)
param aosRecentEvents int = 8

@description('AOS_RECENT_DECISIONS: decisions kept in each agent\'s state.')
@minValue(1)
@maxValue(100)
param aosRecentDecisions int = 8

@description('AOS_PROCESSED_IDS: recent event ids each agent remembers to drop redelivered events.')
@minValue(16)
@maxValue(4096)
param aosProcessedIds int = 1000

@description('AOS_HISTORY_RETENTION_DAYS: days the history table keeps entries.')
@minValue(1)
param aosHistoryRetentionDays int = 365

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-aos-${resourceToken}'
var useScheduler = durableBackend == 'DurableTaskScheduler'
var schedulerName = 'dts-aos-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var modelAccountName = 'oai-aos-${resourceToken}'
// The deployment is named after the model, which is what AOS_MODELS__default__DEPLOYMENT carries.
var modelDeploymentName = modelName

// App settings read by the AOS code: the same names as in local.settings.json.
var aosSettings = {
  AOS_TASK_HUB: aosTaskHub
  AOS_EVENTS_QUEUE: aosEventsQueue
  AOS_DEADLETTER_QUEUE: aosDeadletterQueue
  AOS_AGENTS_TABLE: aosAgentsTable
  AOS_HISTORY_TABLE: aosHistoryTable
  AOS_DEADLETTER_TABLE: aosDeadletterTable
  AOS_RECENT_EVENTS: string(aosRecentEvents)
  AOS_RECENT_DECISIONS: string(aosRecentDecisions)
  AOS_PROCESSED_IDS: string(aosProcessedIds)
  AOS_HISTORY_RETENTION_DAYS: string(aosHistoryRetentionDays)
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  params: {
    location: location
    tags: tags
    name: 'id-aos-${resourceToken}'
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    name: 'staos${resourceToken}'
    skuName: storageSku
    deploymentContainerName: deploymentContainerName
    // The Functions runtime moves a message that keeps failing to "<queue>-poison"; creating it up
    // front makes it visible (and monitorable) before the first failure. "<queue>-maintenance"
    // carries the background purges (DELETE /api/agents/{id}?purge=true).
    queueNames: [
      aosEventsQueue
      aosDeadletterQueue
      '${aosEventsQueue}-poison'
      '${aosEventsQueue}-maintenance'
    ]
    tableNames: [
      aosAgentsTable
      aosHistoryTable
      aosDeadletterTable
    ]
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-aos-${resourceToken}'
    applicationInsightsName: 'appi-aos-${resourceToken}'
  }
}

// The task hub keeps the Azure Storage hub's name, which host.json resolves from AOS_TASK_HUB.
module scheduler 'app/scheduler.bicep' = if (useScheduler) {
  name: 'scheduler'
  params: {
    location: location
    tags: tags
    name: schedulerName
    taskHubName: aosTaskHub
    skuName: schedulerSku
    capacity: schedulerCapacity
  }
}

// Azure OpenAI account and model deployment: the default model profile of thinking agents.
module model 'app/model.bicep' = if (deployModel) {
  name: 'model'
  params: {
    location: empty(modelLocation) ? location : modelLocation
    tags: tags
    name: modelAccountName
    deploymentName: modelDeploymentName
    modelName: modelName
    modelVersion: modelVersion
    deploymentSku: modelDeploymentSku
    capacity: modelCapacity
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    principalId: identity.outputs.principalId
    // Names, not the module's outputs: they are known up front, so no resource id in rbac.bicep is
    // ever built from an empty name, even where its condition is false.
    useScheduler: useScheduler
    schedulerName: schedulerName
    schedulerTaskHubName: aosTaskHub
    useModel: deployModel
    modelAccountName: modelAccountName
  }
  dependsOn: [
    scheduler
    model
  ]
}

module api 'app/api.bicep' = {
  name: 'api'
  params: {
    location: location
    tags: tags
    name: functionAppName
    planName: 'plan-aos-${resourceToken}'
    hostingPlan: hostingPlan
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    aosSettings: aosSettings
    durableBackend: durableBackend
    schedulerEndpoint: useScheduler ? scheduler.outputs.endpoint : ''
    schedulerTaskHubName: useScheduler ? scheduler.outputs.taskHubName : ''
    useModel: deployModel
    modelEndpoint: deployModel ? model.outputs.endpoint : ''
    modelDeploymentName: deployModel ? model.outputs.deploymentName : ''
  }
  // The host must be able to reach storage (and the scheduler, and the model) the moment it starts.
  dependsOn: [
    rbac
  ]
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_FUNCTION_APP_URL string = 'https://${api.outputs.defaultHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AOS_TASK_HUB string = aosTaskHub
output AOS_DURABLE_BACKEND string = durableBackend
output DURABLE_TASK_SCHEDULER_NAME string = useScheduler ? schedulerName : ''
output AZURE_OPENAI_ENDPOINT string = deployModel ? model.outputs.endpoint : ''
output AZURE_OPENAI_DEPLOYMENT string = deployModel ? modelDeploymentName : ''
