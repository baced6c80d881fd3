"""Security and wiring properties of the Bicep templates, read through the parser checkov uses.

The templates are parsed by `infra/scripts/bicep_check.py json` running in `.venv-infra` (built by
`scripts/check-infra`); pycep-parser turns each template into a dict in which literals are Python
values and references are the referenced name (a parameter, variable or `resource.property` path).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
INFRA_PYTHON = ROOT / ".venv-infra" / "bin" / "python"
BICEP_CHECK = INFRA / "scripts" / "bicep_check.py"

# Built-in role definition ids, https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration#durable-task-data-contributor
DURABLE_TASK_DATA_CONTRIBUTOR = "0ad04412-c4d5-4796-b79c-f76d14c8d402"
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/ai-machine-learning#cognitive-services-openai-user
COGNITIVE_SERVICES_OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"

DTS_CONNECTION = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
# host.json paths overridden by app settings (functions-host-json#override-hostjson-values).
DTS_PROVIDER_TYPE = "AzureFunctionsJobHost__extensions__durableTask__storageProvider__type"
DTS_PROVIDER_CONNECTION = (
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName"
)

AOS_SETTINGS = {
    "AOS_TASK_HUB": "AOSHub",
    "AOS_EVENTS_QUEUE": "aos-events",
    "AOS_DEADLETTER_QUEUE": "aos-events-deadletter",
    "AOS_AGENTS_TABLE": "AOSAgents",
    "AOS_HISTORY_TABLE": "AOSHistory",
    "AOS_DEADLETTER_TABLE": "AOSDeadLetters",
    "AOS_RECENT_EVENTS": 8,
    "AOS_RECENT_DECISIONS": 8,
    "AOS_PROCESSED_IDS": 1000,
    "AOS_HISTORY_RETENTION_DAYS": 365,
}

SECRET_MARKERS = ("AccountKey=", "SharedAccessSignature", "DefaultEndpointsProtocol", "sig=")


def infra_python() -> Path:
    if not INFRA_PYTHON.exists():
        pytest.fail(
            f"{INFRA_PYTHON} is missing: run scripts/check-infra first "
            "(scripts/check and make test do); it builds the venv with the Bicep parsers",
            pytrace=False,
        )
    return INFRA_PYTHON


@functools.cache
def templates() -> dict[str, dict[str, Any]]:
    paths = sorted(str(path.relative_to(ROOT)) for path in INFRA.rglob("*.bicep"))
    completed = subprocess.run(
        [str(infra_python()), str(BICEP_CHECK), "json", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    parsed: dict[str, dict[str, Any]] = json.loads(completed.stdout)
    return parsed


def template(name: str) -> dict[str, Any]:
    return templates()[f"infra/{name}"]


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource's declared body, under any loop or condition wrapper."""
    config: dict[str, Any] = resource["config"]
    while "loop_type" in config or "condition" in config:
        config = config["config"]
    return config


def resource(template_name: str, symbol: str) -> dict[str, Any]:
    return body(template(template_name)["resources"][symbol])


def variable(template_name: str, name: str) -> Any:
    return template(template_name)["variables"][name]["value"]


def param_default(template_name: str, name: str) -> Any:
    return template(template_name)["parameters"][name]["default"]


def ref(expression: Any) -> str:
    """`a.b.c` for a parsed property access, the name itself for a plain reference."""
    if isinstance(expression, str):
        return expression
    if isinstance(expression, dict) and "operator" in expression:
        operator = expression["operator"]
        if operator["type"] == "property_accessor":
            operands = operator["operands"]
            return f"{ref(operands['operand_1'])}.{ref(operands['operand_2'])}"
    raise AssertionError(f"not a reference: {expression!r}")


def conditional(expression: Any) -> dict[str, Any]:
    assert isinstance(expression, dict), expression
    operator = expression["operator"]
    assert operator["type"] == "conditional", expression
    operands: dict[str, Any] = operator["operands"]
    return operands


def all_resources() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, symbol, declared)
        for path, parsed in templates().items()
        for symbol, declared in parsed.get("resources", {}).items()
    ]


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *strings_in(item)]]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return []


# -- storage ---------------------------------------------------------------------------------------


def test_storage_account_is_identity_only_https_only_and_private_to_anonymous_readers() -> None:
    properties = resource("app/storage.bicep", "storage")["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["defaultToOAuthAuthentication"] is True
    assert properties["allowBlobPublicAccess"] is False
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["minimumTlsVersion"] == "TLS1_2"


def test_deployment_container_is_private() -> None:
    container = resource("app/storage.bicep", "deploymentContainer")
    assert container["properties"]["publicAccess"] == "None"
    assert ref(container["parent"]) == "blobService"


def test_queues_and_tables_are_created_with_the_app_defaults() -> None:
    storage_types = {
        symbol: declared["type"]
        for symbol, declared in template("app/storage.bicep")["resources"].items()
    }
    assert storage_types["queues"] == "Microsoft.Storage/storageAccounts/queueServices/queues"
    assert storage_types["tables"] == "Microsoft.Storage/storageAccounts/tableServices/tables"

    params = body(template("main.bicep")["modules"]["storage"])["params"]
    defaults = {
        name: spec["default"] for name, spec in template("main.bicep")["parameters"].items()
    }

    def resolve(name: str) -> str:
        return re.sub(
            r"\$\{(\w+)\}", lambda match: str(defaults[match.group(1)]), defaults.get(name, name)
        )

    assert [resolve(name) for name in params["queueNames"]] == [
        "aos-events",
        "aos-events-deadletter",
        "aos-events-poison",
        "aos-events-maintenance",
    ]
    assert [resolve(name) for name in params["tableNames"]] == [
        "AOSAgents",
        "AOSHistory",
        "AOSDeadLetters",
    ]


# -- function app ----------------------------------------------------------------------------------


def test_function_app_is_https_only_with_tls_1_2_and_no_ftp() -> None:
    app = resource("app/api.bicep", "functionApp")
    assert app["properties"]["httpsOnly"] is True
    site_config = app["properties"]["siteConfig"]
    assert site_config["minTlsVersion"] == "1.2"
    assert site_config["scmMinTlsVersion"] == "1.2"
    assert site_config["ftpsState"] == "Disabled"
    for policy in ("ftpCredentials", "scmCredentials"):
        assert resource("app/api.bicep", policy)["properties"]["allow"] is False


def test_function_app_runs_as_the_user_assigned_identity() -> None:
    app = resource("app/api.bicep", "functionApp")
    assert app["identity"]["type"] == "UserAssigned"
    assert list(app["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]


def test_flex_consumption_is_the_default_with_python_3_11_in_function_app_config() -> None:
    assert param_default("main.bicep", "hostingPlan") == "FlexConsumption"
    assert param_default("main.bicep", "pythonVersion") == "3.11"
    assert variable("app/api.bicep", "isFlex") == {
        "operator": {
            "type": "equals",
            "operands": {"operand_1": "hostingPlan", "operand_2": "FlexConsumption"},
        }
    }
    plan_sku = conditional(resource("app/api.bicep", "plan")["sku"])
    assert plan_sku["condition"] == "isFlex"
    assert plan_sku["true_value"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan_sku["false_value"]["tier"] == "ElasticPremium"

    app = resource("app/api.bicep", "functionApp")
    flex = conditional(app["properties"]["functionAppConfig"])
    assert flex["condition"] == "isFlex"
    assert flex["false_value"] is None
    assert flex["true_value"]["runtime"] == {"name": "python", "version": "pythonVersion"}
    deployment = flex["true_value"]["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }


def test_worker_runtime_and_linux_fx_version_are_set_only_for_elastic_premium() -> None:
    app = resource("app/api.bicep", "functionApp")
    linux_fx = conditional(app["properties"]["siteConfig"]["linuxFxVersion"])
    assert linux_fx == {
        "condition": "isFlex",
        "true_value": None,
        "false_value": "Python|${pythonVersion}",
    }
    assert variable("app/api.bicep", "elasticPremiumSettings")["FUNCTIONS_WORKER_RUNTIME"] == (
        "python"
    )
    union_args = variable("app/api.bicep", "appSettings")["function"]["parameters"]
    assert union_args["arg_1"] == "aosSettings"
    assert union_args["arg_2"] == "platformSettings"
    assert conditional(union_args["arg_3"]) == {
        "condition": "isFlex",
        "true_value": {},
        "false_value": "elasticPremiumSettings",
    }
    for always_set in ("platformSettings",):
        assert "FUNCTIONS_WORKER_RUNTIME" not in variable("app/api.bicep", always_set)
    assert "FUNCTIONS_WORKER_RUNTIME" not in variable("main.bicep", "aosSettings")


def test_app_settings_are_applied_from_the_merged_settings_object() -> None:
    app_settings = resource("app/api.bicep", "functionApp")["properties"]["siteConfig"][
        "appSettings"
    ]
    assert app_settings["loop_type"]["detail"] == {
        "item_name": "setting",
        "object_name": "appSettings",
    }
    assert {key: ref(value) for key, value in app_settings["config"].items()} == {
        "name": "setting.key",
        "value": "setting.value",
    }


def test_storage_connection_is_identity_based() -> None:
    settings = variable("app/api.bicep", "platformSettings")
    assert settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    for service in ("blob", "queue", "table"):
        assert settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"{service}Endpoint"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "ClientId=${identityClientId};Authorization=AAD"
    )
    main_api = body(template("main.bicep")["modules"]["api"])["params"]
    assert ref(main_api["identityClientId"]) == "identity.outputs.clientId"
    assert ref(main_api["storageAccountName"]) == "storage.outputs.name"


def test_no_app_setting_holds_a_key_or_a_storage_connection_string() -> None:
    settings: dict[str, Any] = {}
    for name in ("platformSettings", "elasticPremiumSettings"):
        settings.update(variable("app/api.bicep", name))
    settings.update(variable("main.bicep", "aosSettings"))

    assert "AzureWebJobsStorage" not in settings
    assert "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING" not in settings
    connection_strings = {name for name in settings if "CONNECTION" in name.upper()}
    # Ingestion address and instrumentation id only: local auth is off on the component below.
    assert connection_strings == {"APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert ref(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == (
        "applicationInsights.properties.ConnectionString"
    )
    insights = resource("app/monitoring.bicep", "applicationInsights")
    assert insights["properties"]["DisableLocalAuth"] is True
    for text in strings_in(settings):
        assert not any(marker in text for marker in SECRET_MARKERS), text


def test_no_template_reads_keys_or_outputs_secrets() -> None:
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text()
        assert not re.search(r"\blist(Keys|AccountSas|ServiceSas)\s*\(", text, re.I), path
        assert "AccountKey=" not in text, path
    for template_path, parsed in templates().items():
        for name, output in parsed.get("outputs", {}).items():
            text = json.dumps(output["value"])
            for secret in ("ConnectionString", "InstrumentationKey", "listKeys", "primaryKey"):
                assert secret not in text, (template_path, name)


def test_aos_settings_are_parameters_with_the_documented_defaults() -> None:
    aos_settings = variable("main.bicep", "aosSettings")
    assert set(aos_settings) == set(AOS_SETTINGS)
    for setting, expected in AOS_SETTINGS.items():
        value = aos_settings[setting]
        param = (
            value["function"]["parameters"]["value_to_convert"]
            if isinstance(value, dict)
            else value
        )
        assert param_default("main.bicep", param) == expected, setting
        if isinstance(expected, int):
            assert value["function"]["type"] == "string", setting  # app settings are strings
    assert body(template("main.bicep")["modules"]["api"])["params"]["aosSettings"] == (
        "aosSettings"
    )


def test_task_hub_setting_is_the_one_host_json_reads() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["durableTask"]["hubName"] == "%AOS_TASK_HUB%"
    assert "AOS_TASK_HUB" in variable("main.bicep", "aosSettings")


# -- role assignments ------------------------------------------------------------------------------


def test_identity_gets_exactly_the_roles_the_bindings_and_durable_need() -> None:
    rbac = template("app/rbac.bicep")
    role_vars = {name: spec["value"] for name, spec in rbac["variables"].items()}
    granted: dict[str, str] = {}
    conditions: dict[str, str | None] = {}
    for symbol, declared in rbac["resources"].items():
        if declared["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        config = body(declared)
        conditions[symbol] = declared["config"].get("condition")
        role_id = config["properties"]["roleDefinitionId"]["function"]
        assert role_id["type"] == "subscription_resource_id", symbol
        assert role_id["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        role_var = role_id["parameters"]["resource_name_1"]
        granted[role_vars[role_var]] = config["scope"]
        assert config["properties"]["principalId"] == "principalId", symbol
        assert config["properties"]["principalType"] == "ServicePrincipal", symbol

        name = config["name"]["function"]
        assert name["type"] == "guid", symbol
        assert ref(name["parameters"]["base_string"]) == f"{config['scope']}.id", symbol
        assert name["parameters"]["extra_string_1"] == "principalId", symbol
        assert name["parameters"]["extra_string_2"] == role_var, symbol

    assert granted == {
        STORAGE_BLOB_DATA_OWNER: "storage",
        STORAGE_QUEUE_DATA_CONTRIBUTOR: "storage",
        STORAGE_TABLE_DATA_CONTRIBUTOR: "storage",
        MONITORING_METRICS_PUBLISHER: "applicationInsights",
        DURABLE_TASK_DATA_CONTRIBUTOR: "taskHub",
        COGNITIVE_SERVICES_OPENAI_USER: "modelAccount",
    }
    # The storage and telemetry roles always; the task hub's only with the scheduler backend, the
    # model account's only with deployModel.
    assert conditions == {
        "blobDataOwner": None,
        "queueDataContributor": None,
        "tableDataContributor": None,
        "metricsPublisher": None,
        "taskHubDataContributor": "useScheduler",
        "openAiUser": "useModel",
    }
    rbac_params = body(template("main.bicep")["modules"]["rbac"])["params"]
    assert ref(rbac_params["principalId"]) == "identity.outputs.principalId"


def test_no_other_template_assigns_roles() -> None:
    assigners = {
        path
        for path, _symbol, declared in all_resources()
        if declared["type"] == "Microsoft.Authorization/roleAssignments"
    }
    assert assigners == {"infra/app/rbac.bicep"}


def test_app_deploys_after_its_roles_exist() -> None:
    api = template("main.bicep")["modules"]["api"]
    assert "rbac" in body(api)["dependsOn"]


# -- Durable backend -------------------------------------------------------------------------------


def test_durable_backend_is_a_parameter_defaulting_to_azure_storage() -> None:
    for name in ("main.bicep", "app/api.bicep"):
        declared = template(name)["parameters"]["durableBackend"]
        allowed = [d["argument"] for d in declared["decorators"] if d["type"] == "allowed"]
        assert allowed == [["AzureStorage", "DurableTaskScheduler"]], name
        assert declared["default"] == "AzureStorage", name
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["durableBackend"]["value"] == "${DURABLE_BACKEND=AzureStorage}"
    assert parameters["schedulerSku"]["value"] == "${DURABLE_TASK_SCHEDULER_SKU=Consumption}"
    for name in ("main.bicep", "app/api.bicep"):
        assert variable(name, "useScheduler") == {
            "operator": {
                "type": "equals",
                "operands": {"operand_1": "durableBackend", "operand_2": "DurableTaskScheduler"},
            }
        }, name
    api = body(template("main.bicep")["modules"]["api"])["params"]
    assert api["durableBackend"] == "durableBackend"


def test_scheduler_and_task_hub_are_deployed_only_for_the_scheduler_backend() -> None:
    module = template("main.bicep")["modules"]["scheduler"]
    assert module["detail"]["path"] == "app/scheduler.bicep"
    assert module["config"]["condition"] == "useScheduler"
    params = body(module)["params"]
    # The hub keeps the name host.json resolves through %AOS_TASK_HUB%.
    assert params["taskHubName"] == "aosTaskHub"
    assert params["skuName"] == "schedulerSku"
    assert params["capacity"] == "schedulerCapacity"

    resources = template("app/scheduler.bicep")["resources"]
    assert {symbol: declared["type"] for symbol, declared in resources.items()} == {
        "scheduler": "Microsoft.DurableTask/schedulers",
        "taskHub": "Microsoft.DurableTask/schedulers/taskHubs",
    }
    assert ref(body(resources["taskHub"])["parent"]) == "scheduler"
    assert body(resources["taskHub"])["name"] == "taskHubName"
    properties = body(resources["scheduler"])["properties"]
    assert properties["sku"]["name"] == "skuName"
    assert conditional(properties["sku"]["capacity"]) == {
        "condition": "isDedicated",
        "true_value": "capacity",
        "false_value": None,
    }
    # An empty allow list denies every caller, so the parameter may not be empty.
    allowlist = template("app/scheduler.bicep")["parameters"]["ipAllowlist"]
    assert {"type": "min_length", "argument": 1} in allowlist["decorators"]
    assert allowlist["default"]
    assert param_default("main.bicep", "schedulerSku") == "Consumption"
    assert ref(template("app/scheduler.bicep")["outputs"]["endpoint"]["value"]) == (
        "scheduler.properties.endpoint"
    )


def test_scheduler_outputs_are_read_only_when_the_scheduler_backend_is_chosen() -> None:
    # A conditional module's outputs may only be read behind the same condition.
    main = template("main.bicep")
    api = body(main["modules"]["api"])["params"]
    for param in ("schedulerEndpoint", "schedulerTaskHubName"):
        operands = conditional(api[param])
        assert operands["condition"] == "useScheduler", param
        assert ref(operands["true_value"]).startswith("scheduler.outputs."), param
        assert operands["false_value"] == "", param
    assert conditional(main["outputs"]["DURABLE_TASK_SCHEDULER_NAME"]["value"]) == {
        "condition": "useScheduler",
        "true_value": "schedulerName",
        "false_value": "",
    }


def test_rbac_gets_the_scheduler_names_up_front_and_a_switch() -> None:
    # Known names (never empty, never a conditional output) so that no resource id in rbac.bicep is
    # built from an empty name, even in a branch whose condition is false.
    main = template("main.bicep")
    rbac = body(main["modules"]["rbac"])
    assert rbac["params"]["useScheduler"] == "useScheduler"
    assert rbac["params"]["schedulerName"] == "schedulerName"
    assert rbac["params"]["schedulerTaskHubName"] == "aosTaskHub"
    assert "scheduler" in rbac["dependsOn"]
    assert variable("main.bicep", "schedulerName") == "dts-aos-${resourceToken}"
    assert body(main["modules"]["scheduler"])["params"]["name"] == "schedulerName"
    declared = template("app/rbac.bicep")["parameters"]["useScheduler"]
    assert declared["type"] == "bool"
    assert declared["default"] is False
    for symbol in ("scheduler", "taskHub"):
        existing = template("app/rbac.bicep")["resources"][symbol]
        assert existing["existing"] is True, symbol
        assert existing["config"]["condition"] == "useScheduler", symbol


def test_the_data_contributor_role_is_the_published_one_on_the_task_hub_only() -> None:
    rbac = template("app/rbac.bicep")
    assert variable("app/rbac.bicep", "durableTaskDataContributor") == (
        DURABLE_TASK_DATA_CONTRIBUTOR
    )
    assignment = rbac["resources"]["taskHubDataContributor"]
    assert assignment["config"]["condition"] == "useScheduler"
    config = body(assignment)
    assert config["scope"] == "taskHub"
    assert rbac["resources"]["taskHub"]["type"] == "Microsoft.DurableTask/schedulers/taskHubs"
    rbac_params = body(template("main.bicep")["modules"]["rbac"])["params"]
    assert ref(rbac_params["principalId"]) == "identity.outputs.principalId"


def test_scheduler_settings_are_added_only_for_the_scheduler_backend() -> None:
    union_args = variable("app/api.bicep", "appSettings")["function"]["parameters"]
    assert conditional(union_args["arg_4"]) == {
        "condition": "useScheduler",
        "true_value": "durableTaskSchedulerSettings",
        "false_value": {},
    }
    # arg_5 is the model settings (test_the_app_gets_the_four_model_settings_only_when_on).
    assert set(union_args) == {"arg_1", "arg_2", "arg_3", "arg_4", "arg_5"}
    settings = variable("app/api.bicep", "durableTaskSchedulerSettings")
    assert settings == {
        DTS_CONNECTION: (
            "Endpoint=${schedulerEndpoint};TaskHub=${schedulerTaskHubName};"
            "Authentication=ManagedIdentity;ClientID=${identityClientId}"
        ),
        DTS_PROVIDER_TYPE: "azureManaged",
        DTS_PROVIDER_CONNECTION: DTS_CONNECTION,
    }
    for text in strings_in(settings):
        assert not any(marker in text for marker in SECRET_MARKERS), text
    # Nothing else mentions the scheduler: the default deployment's settings are unchanged.
    for name in ("platformSettings", "elasticPremiumSettings", "modelSettings"):
        for key in variable("app/api.bicep", name):
            assert "durableTask" not in key, key
            assert "DURABLE" not in key, key
    for key in variable("main.bicep", "aosSettings"):
        assert "DURABLE" not in key, key


def test_host_json_leaves_the_storage_provider_to_the_default_and_the_app_settings() -> None:
    # host.json is the same for both backends: with no storageProvider it is Azure Storage, and the
    # AzureFunctionsJobHost__ settings above override exactly the two keys the scheduler needs.
    durable = json.loads((ROOT / "host.json").read_text())["extensions"]["durableTask"]
    assert "storageProvider" not in durable
    overridden = {
        key.removeprefix("AzureFunctionsJobHost__").replace("__", ".")
        for key in variable("app/api.bicep", "durableTaskSchedulerSettings")
        if key.startswith("AzureFunctionsJobHost__")
    }
    assert overridden == {
        "extensions.durableTask.storageProvider.type",
        "extensions.durableTask.storageProvider.connectionStringName",
    }


# -- outputs ---------------------------------------------------------------------------------------


def test_outputs_name_the_app_and_its_url_for_azd() -> None:
    outputs = template("main.bicep")["outputs"]
    assert ref(outputs["AZURE_FUNCTION_APP_NAME"]["value"]) == "api.outputs.name"
    assert outputs["AZURE_FUNCTION_APP_URL"]["value"] == "https://${api.outputs.defaultHostName}"
    assert ref(template("app/api.bicep")["outputs"]["defaultHostName"]["value"]) == (
        "functionApp.properties.defaultHostName"
    )
    for name, output in outputs.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), name
        assert "CONNECTION" not in name, name
        if name.endswith(("_URL", "_URI", "_ENDPOINT")):
            value = output["value"]
            if isinstance(value, dict):
                # Only for an optional resource: its module's endpoint when deployed, else empty.
                operands = conditional(value)
                assert operands["false_value"] == "", name
                value = ref(operands["true_value"])
                assert re.fullmatch(r"\w+\.outputs\.endpoint", value), name
                continue
            assert str(value).startswith("https://"), name


def test_function_app_is_tagged_for_the_azd_service() -> None:
    tags = resource("app/api.bicep", "functionApp")["tags"]["function"]
    assert tags["type"] == "union"
    assert tags["parameters"]["arg_2"] == {"'azd-service-name'": "api"}
    assert variable("main.bicep", "tags") == {"'azd-env-name'": "environmentName"}


# -- a model for thinking agents -------------------------------------------------------------------

MODEL_SETTINGS = (
    "AOS_MODELS__default__ENDPOINT",
    "AOS_MODELS__default__DEPLOYMENT",
    "AOS_MODELS__default__API",
    "AOS_MODELS__default__CLIENT_ID",
)


def decorator(declared: dict[str, Any], kind: str) -> Any:
    return next(d["argument"] for d in declared["decorators"] if d["type"] == kind)


def test_deploy_model_is_a_switch_on_by_default_with_the_model_parameters() -> None:
    declared = template("main.bicep")["parameters"]
    assert declared["deployModel"]["type"] == "bool"
    assert declared["deployModel"]["default"] is True
    assert declared["modelName"]["default"] == "gpt-4.1-mini"
    assert declared["modelVersion"]["default"] == "2025-04-14"
    assert declared["modelDeploymentSku"]["default"] == "GlobalStandard"
    assert decorator(declared["modelDeploymentSku"], "allowed") == [
        "GlobalStandard",
        "DataZoneStandard",
        "Standard",
    ]
    assert declared["modelCapacity"]["type"] == "int"
    assert declared["modelCapacity"]["default"] == 10
    assert decorator(declared["modelCapacity"], "min_value") == 1
    # Empty: the account goes where everything else goes.
    assert declared["modelLocation"]["default"] == ""
    location = conditional(body(template("main.bicep")["modules"]["model"])["params"]["location"])
    assert location["condition"]["function"] == {
        "type": "empty",
        "parameters": {"item_to_test": "modelLocation"},
    }
    assert (location["true_value"], location["false_value"]) == ("location", "modelLocation")

    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert {
        name: parameters[name]["value"]
        for name in declared
        if name.startswith(("model", "deployM"))
    } == {
        "deployModel": "${AOS_DEPLOY_MODEL=true}",
        "modelName": "${AOS_MODEL_NAME=gpt-4.1-mini}",
        "modelVersion": "${AOS_MODEL_VERSION=2025-04-14}",
        "modelDeploymentSku": "${AOS_MODEL_SKU=GlobalStandard}",
        "modelCapacity": "${AOS_MODEL_CAPACITY=10}",
        "modelLocation": "${AOS_MODEL_LOCATION=}",
    }


def test_the_account_and_its_deployment_exist_only_when_deploy_model_is_on() -> None:
    module = template("main.bicep")["modules"]["model"]
    assert module["detail"]["path"] == "app/model.bicep"
    assert module["config"]["condition"] == "deployModel"
    params = body(module)["params"]
    assert params["name"] == "modelAccountName"
    assert variable("main.bicep", "modelAccountName") == "oai-aos-${resourceToken}"
    assert params["deploymentName"] == "modelDeploymentName"
    assert variable("main.bicep", "modelDeploymentName") == "modelName"
    assert {
        key: params[key] for key in ("modelName", "modelVersion", "deploymentSku", "capacity")
    } == {
        "modelName": "modelName",
        "modelVersion": "modelVersion",
        "deploymentSku": "modelDeploymentSku",
        "capacity": "modelCapacity",
    }

    resources = template("app/model.bicep")["resources"]
    assert {symbol: declared["type"] for symbol, declared in resources.items()} == {
        "account": "Microsoft.CognitiveServices/accounts",
        "deployment": "Microsoft.CognitiveServices/accounts/deployments",
    }
    assert ref(body(resources["deployment"])["parent"]) == "account"
    # Anywhere else an account appears it is the existing one, behind the same switch.
    for path, symbol, declared in all_resources():
        if declared["type"].startswith("Microsoft.CognitiveServices/") and path != (
            "infra/app/model.bicep"
        ):
            assert declared["existing"] is True, (path, symbol)
            assert declared["config"]["condition"] == "useModel", (path, symbol)


def test_the_account_is_entra_only_with_a_custom_subdomain_and_storage_network_rules() -> None:
    account = resource("app/model.bicep", "account")
    assert account["kind"] == "OpenAI"
    properties = account["properties"]
    assert properties["disableLocalAuth"] is True
    # Entra ID authentication needs a custom subdomain; it is the (unique) account name.
    assert properties["customSubDomainName"] == "name"
    assert account["name"] == "name"
    # The same network choice as the storage account (checkov-skips.yaml says why).
    storage = resource("app/storage.bicep", "storage")["properties"]
    assert properties["publicNetworkAccess"] == storage["publicNetworkAccess"] == "Enabled"
    assert properties["networkAcls"]["defaultAction"] == storage["networkAcls"]["defaultAction"]
    assert properties["restrictOutboundNetworkAccess"] is True
    assert properties["allowedFqdnList"] == []
    # Its own identity, never the app's (which holds the storage roles).
    assert account["identity"] == {"type": "SystemAssigned"}


def test_the_deployment_pins_the_model_and_upgrades_only_when_it_is_retired() -> None:
    deployment = resource("app/model.bicep", "deployment")
    assert deployment["name"] == "deploymentName"
    assert deployment["sku"] == {"name": "deploymentSku", "capacity": "capacity"}
    assert deployment["properties"] == {
        "model": {"format": "OpenAI", "name": "modelName", "version": "modelVersion"},
        "versionUpgradeOption": "OnceCurrentVersionExpired",
    }
    outputs = template("app/model.bicep")["outputs"]
    assert {name: ref(output["value"]) for name, output in outputs.items()} == {
        "name": "account.name",
        "endpoint": "account.properties.endpoint",
        "deploymentName": "deployment.name",
    }


def test_the_app_gets_the_openai_user_role_on_the_account_only_when_on() -> None:
    rbac = template("app/rbac.bicep")
    assert variable("app/rbac.bicep", "cognitiveServicesOpenAiUser") == (
        COGNITIVE_SERVICES_OPENAI_USER
    )
    assignment = rbac["resources"]["openAiUser"]
    assert assignment["config"]["condition"] == "useModel"
    config = body(assignment)
    assert config["scope"] == "modelAccount"
    assert config["properties"]["principalId"] == "principalId"
    role = config["properties"]["roleDefinitionId"]["function"]["parameters"]
    assert role["resource_name_1"] == "cognitiveServicesOpenAiUser"
    account = rbac["resources"]["modelAccount"]
    assert account["type"] == "Microsoft.CognitiveServices/accounts"
    assert account["existing"] is True
    assert account["config"]["condition"] == "useModel"
    assert body(account)["name"] == "modelAccountName"
    declared = rbac["parameters"]["useModel"]
    assert (declared["type"], declared["default"]) == ("bool", False)

    # The name known up front (never the conditional module's output), the switch, and the order.
    module = body(template("main.bicep")["modules"]["rbac"])
    assert module["params"]["useModel"] == "deployModel"
    assert module["params"]["modelAccountName"] == "modelAccountName"
    assert ref(module["params"]["principalId"]) == "identity.outputs.principalId"
    assert "model" in module["dependsOn"]


def test_the_app_gets_the_four_model_settings_only_when_on() -> None:
    union_args = variable("app/api.bicep", "appSettings")["function"]["parameters"]
    assert conditional(union_args["arg_5"]) == {
        "condition": "useModel",
        "true_value": "modelSettings",
        "false_value": {},
    }
    assert variable("app/api.bicep", "modelSettings") == {
        "AOS_MODELS__default__ENDPOINT": "modelEndpoint",
        "AOS_MODELS__default__DEPLOYMENT": "modelDeploymentName",
        "AOS_MODELS__default__API": "azure_openai",
        # The user-assigned identity the app runs as, as for AzureWebJobsStorage__clientId.
        "AOS_MODELS__default__CLIENT_ID": "identityClientId",
    }
    declared = template("app/api.bicep")["parameters"]["useModel"]
    assert (declared["type"], declared["default"]) == ("bool", False)

    api = body(template("main.bicep")["modules"]["api"])["params"]
    assert api["useModel"] == "deployModel"
    assert ref(api["identityClientId"]) == "identity.outputs.clientId"
    for param, output in (
        ("modelEndpoint", "model.outputs.endpoint"),
        ("modelDeploymentName", "model.outputs.deploymentName"),
    ):
        operands = conditional(api[param])
        assert operands["condition"] == "deployModel", param
        assert ref(operands["true_value"]) == output, param
        assert operands["false_value"] == "", param
    # When off, nothing else gives the app a model profile.
    for name in ("platformSettings", "elasticPremiumSettings", "durableTaskSchedulerSettings"):
        assert not any("AOS_MODELS" in key for key in variable("app/api.bicep", name)), name
    assert not any("AOS_MODELS" in key for key in variable("main.bicep", "aosSettings"))


def test_the_model_endpoint_and_deployment_are_outputs_only_when_on() -> None:
    outputs = template("main.bicep")["outputs"]
    endpoint = conditional(outputs["AZURE_OPENAI_ENDPOINT"]["value"])
    assert endpoint["condition"] == "deployModel"
    assert ref(endpoint["true_value"]) == "model.outputs.endpoint"
    assert conditional(outputs["AZURE_OPENAI_DEPLOYMENT"]["value"]) == {
        "condition": "deployModel",
        "true_value": "modelDeploymentName",
        "false_value": "",
    }


def test_no_model_api_key_anywhere() -> None:
    # Entra ID only: no template sets, reads or outputs a key for the model.
    for path in [*INFRA.rglob("*.bicep"), INFRA / "main.parameters.json", ROOT / "azure.yaml"]:
        text = path.read_text()
        assert "API_KEY" not in text.upper(), path
        assert not re.search(r"apiKey|listKeys|key1|key2|@secure", text, re.I), path
    settings = variable("app/api.bicep", "modelSettings")
    assert set(settings) == set(MODEL_SETTINGS)
    for text in strings_in(settings):
        assert not any(marker in text for marker in SECRET_MARKERS), text
