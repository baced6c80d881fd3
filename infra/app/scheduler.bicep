// The Durable Task Scheduler: the managed Durable backend main.bicep deploys instead of the task hub
// in storage when durableBackend is 'DurableTaskScheduler'. One scheduler and one task hub, named
// like the Azure Storage task hub (host.json reads the hub name from AOS_TASK_HUB either way). The
// app reaches it with its user-assigned identity: the role assignment is in rbac.bicep, the
// connection settings in api.bicep. Resource format:
// https://learn.microsoft.com/azure/templates/microsoft.durabletask/schedulers

@description('Azure region of the scheduler (Durable Task Scheduler is not offered in every region).')
param location string

@description('Tags applied to the scheduler.')
param tags object

@description('Name of the scheduler.')
@minLength(3)
@maxLength(64)
param name string

@description('Name of the task hub; must equal the hubName host.json resolves (AOS_TASK_HUB).')
@minLength(3)
@maxLength(64)
param taskHubName string

@description('Consumption (pay per action, up to 500 actions/s) or Dedicated (capacity units, 2,000 actions/s each).')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

@description('Dedicated only: capacity units (1 to 3). Ignored for Consumption.')
@minValue(1)
@maxValue(3)
param capacity int = 1

@description('Addresses allowed to reach the scheduler (IPv4, IPv6 or CIDR). An empty list denies all traffic.')
@minLength(1)
param ipAllowlist array = [
  '0.0.0.0/0'
]

var isDedicated = skuName == 'Dedicated'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    ipAllowlist: ipAllowlist
    sku: {
      name: skuName
      capacity: isDedicated ? capacity : null
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

output name string = scheduler.name
output taskHubName string = taskHub.name
output endpoint string = scheduler.properties.endpoint
