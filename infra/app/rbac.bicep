// The least set of role assignments the function app's identity needs, each named with guid() so a
// re-deployment finds the same assignment instead of failing on a duplicate.
//   Storage Blob Data Owner         host leases, Durable task-hub blobs, Flex deployment package
//   Storage Queue Data Contributor  queue trigger and output, Durable control and work-item queues
//   Storage Table Data Contributor  agents index, history, Durable history and instances tables
//   Monitoring Metrics Publisher    sending telemetry to Application Insights with Entra auth
//   Durable Task Data Contributor   only with the Durable Task Scheduler backend: the app's task hub
//                                   (orchestrations, activities, entities); scoped to that hub alone
//   Cognitive Services OpenAI User  only with deployModel: calling the model deployments of the AOS
//                                   Azure OpenAI account (inference only: no keys, no management)
// Role definition ids: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles

@description('Name of the storage account the roles are scoped to.')
param storageAccountName string

@description('Name of the Application Insights component the publisher role is scoped to.')
param applicationInsightsName string

@description('Principal (object) id of the function app\'s managed identity.')
param principalId string

@description('True with the Durable Task Scheduler backend: grant the data role on its task hub.')
param useScheduler bool = false

@description('Durable Task Scheduler backend only: name of the scheduler.')
param schedulerName string = ''

@description('Durable Task Scheduler backend only: name of its task hub the app uses.')
param schedulerTaskHubName string = ''

@description('True when main.bicep deploys the Azure OpenAI account: grant the OpenAI User role on it.')
param useModel bool = false

@description('deployModel only: name of the Azure OpenAI account.')
param modelAccountName string = ''

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration#durable-task-data-contributor
var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/ai-machine-learning#cognitive-services-openai-user
var cognitiveServicesOpenAiUser = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' existing = if (useScheduler) {
  name: schedulerName
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' existing = if (useScheduler) {
  parent: scheduler
  name: schedulerTaskHubName
}

resource modelAccount 'Microsoft.CognitiveServices/accounts@2025-06-01' existing = if (useModel) {
  name: modelAccountName
}

resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource taskHubDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useScheduler) {
  name: guid(taskHub.id, principalId, durableTaskDataContributor)
  scope: taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource openAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useModel) {
  name: guid(modelAccount.id, principalId, cognitiveServicesOpenAiUser)
  scope: modelAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesOpenAiUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
