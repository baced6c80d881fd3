// The language model thinking agents call: an Azure OpenAI account and one model deployment, which
// main.bicep deploys unless deployModel is false. Entra ID only: local (key) authentication is
// disabled, so the account has no usable key and the app calls it with its user-assigned identity
// (Cognitive Services OpenAI User, in rbac.bicep; the AOS_MODELS__default__* settings, in api.bicep).
// Network access matches the storage account: a public endpoint, because the app is not
// VNet-integrated; every call still needs an Entra token and the role. The endpoint is HTTPS only
// and the service accepts TLS 1.2 or newer; the resource has no TLS setting to pin.
// Resource format: https://learn.microsoft.com/azure/templates/microsoft.cognitiveservices/accounts

@description('Azure region of the account (models and SKUs are not offered in every region).')
param location string

@description('Tags applied to the account.')
param tags object

@description('Name of the account; also its custom subdomain (<name>.openai.azure.com), which Entra ID authentication requires.')
@minLength(2)
@maxLength(64)
param name string

@description('Name of the model deployment (what the app passes as the model).')
@minLength(2)
@maxLength(64)
param deploymentName string

@description('Model to deploy, for example gpt-4.1-mini or gpt-4o-mini.')
param modelName string

@description('Model version, for example 2025-04-14 for gpt-4.1-mini.')
param modelVersion string

@description('Deployment type: GlobalStandard (pay per token, processed in any Azure region), DataZoneStandard (within the data zone) or Standard (in the account\'s region).')
@allowed([
  'GlobalStandard'
  'DataZoneStandard'
  'Standard'
])
param deploymentSku string = 'GlobalStandard'

@description('Rate limit of the deployment in units of 1,000 tokens per minute; counts against the subscription\'s regional quota.')
@minValue(1)
param capacity int = 10

resource account 'Microsoft.CognitiveServices/accounts@2025-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  // The account's own identity, with no role anywhere: what customer-managed keys or other
  // account-initiated access would use. The app does not use it (it has its own identity).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
    // The account calls nothing on its own (no "on your data" sources): deny it outbound access.
    restrictOutboundNetworkAccess: true
    allowedFqdnList: []
  }
}

// A deployment pinned to one model version; when that version is retired the service moves it to
// the current default version instead of leaving the agents with a deployment that only fails.
resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2025-06-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: deploymentSku
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
    versionUpgradeOption: 'OnceCurrentVersionExpired'
  }
}

output name string = account.name
output endpoint string = account.properties.endpoint
output deploymentName string = deployment.name
