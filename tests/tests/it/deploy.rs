//! The cloud deployment, checked offline: `cfn-lint` on `template.yaml` and `infra/*.yaml`;
//! the CloudFormation that the SAM transform makes of `template.yaml` (every route with its
//! integration, permission and route response, the Deployment, the table as in
//! `infra/tables.json`, the event source mappings, the policies); and `sam build`, which
//! must give every function a `bootstrap`.
//!
//! The tools (cfn-lint, aws-sam-translator, aws-sam-cli, cargo-lambda, ziglang) live in a
//! venv that `scripts/install-deps` makes: `/opt/roomcast-ci/sam-venv`, or the directory
//! in `ROOMCAST_SAM_VENV`. `sam build` takes minutes from clean; it builds into
//! `target/sam` so that it never holds the lock of the target directory the tests are
//! built in. `ROOMCAST_SKIP_SAM_BUILD=1` skips that one test (and says so).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use roomcast_core::commands::ACTIONS;
use serde_json::Value;

const INSTALL_HINT: &str = "run ./scripts/install-deps: it installs cfn-lint, aws-sam-translator, aws-sam-cli, \
     cargo-lambda and ziglang from PyPI into /opt/roomcast-ci/sam-venv (or set ROOMCAST_SAM_VENV to a venv that has them)";

/// Each function of the template: its logical id and the binary cargo-lambda builds.
const FUNCTIONS: &[(&str, &str)] = &[
    ("ConnectFunction", "ws-connect"),
    ("DisconnectFunction", "ws-disconnect"),
    ("MessageFunction", "ws-message"),
    ("FanoutFunction", "kafka-fanout"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root")
}

/// The venv's `bin`, with every tool the checks run.
fn tools_bin() -> PathBuf {
    let venv = std::env::var_os("ROOMCAST_SAM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/roomcast-ci/sam-venv"));
    let bin = venv.join("bin");
    for tool in ["cfn-lint", "sam", "cargo-lambda", "python3"] {
        assert!(
            bin.join(tool).is_file(),
            "`{tool}` is missing from {}: {INSTALL_HINT}",
            bin.display()
        );
    }
    bin
}

/// A tool of the venv (see [`in_venv`]).
fn tool(name: &str) -> Command {
    in_venv(tools_bin().join(name))
}

/// `program`, run at the workspace root with the venv first on PATH (so that cargo-lambda's
/// `python3 -m ziglang` finds zig), without telemetry, with a region and no credentials.
fn in_venv(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![tools_bin()];
    paths.extend(std::env::split_paths(&path));
    let mut command = Command::new(program);
    command
        .current_dir(root())
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1");
    command
}

fn run(mut command: Command) -> Output {
    let shown = format!("{command:?}");
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {shown}: {error}. {INSTALL_HINT}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Written straight to the process's stderr, past the test harness's capture: CI logs
/// show it even when the test passes.
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn infra_templates() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("infra"))
        .expect("infra/")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    found.sort();
    found
}

#[test]
fn cfn_lint_is_clean_on_the_template_and_infra() {
    let mut command = tool("cfn-lint");
    command.arg("template.yaml");
    for template in infra_templates() {
        command.arg(template.strip_prefix(root()).expect("under the root"));
    }
    let output = run(command);
    assert!(
        output.status.success(),
        "cfn-lint found problems:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

// --- The SAM transform ----------------------------------------------------------------------

/// The CloudFormation that CloudFormation itself would make of a SAM template, as JSON.
fn transformed(template: &str, parameters: &[&str]) -> Value {
    let mut command = tool("python3");
    command
        .arg("infra/checks/sam_translate.py")
        .arg(template)
        .args(parameters);
    let output = run(command);
    assert!(
        output.status.success(),
        "the SAM transform of {template} failed:\n{}",
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the transform prints JSON")
}

struct Template {
    parameters: BTreeSet<String>,
    resources: BTreeMap<String, Value>,
}

impl Template {
    /// The transformed template, made once for the tests that read it.
    fn load() -> &'static Self {
        static TEMPLATE: std::sync::OnceLock<Template> = std::sync::OnceLock::new();
        TEMPLATE.get_or_init(|| {
            let template = transformed(
                "template.yaml",
                &["KafkaBootstrapServers=b-1.example:9096,b-2.example:9096"],
            );
            let resources = template["Resources"]
                .as_object()
                .expect("Resources")
                .iter()
                .map(|(name, resource)| (name.clone(), resource.clone()))
                .collect();
            let parameters = template["Parameters"]
                .as_object()
                .expect("Parameters")
                .keys()
                .cloned()
                .collect();
            Template { parameters, resources }
        })
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, resource)| resource["Type"] == kind)
            .map(|(name, resource)| (name.as_str(), resource))
    }

    fn get(&self, name: &str) -> &Value {
        self.resources
            .get(name)
            .unwrap_or_else(|| panic!("no resource {name} in the transformed template"))
    }
}

/// `{"Ref": "X"}` → `X`.
fn reference(value: &Value) -> Option<&str> {
    value.get("Ref").and_then(Value::as_str)
}

/// The text of a `Fn::Sub` (its first form, or the string of its list form).
fn sub(value: &Value) -> Option<&str> {
    match value.get("Fn::Sub")? {
        Value::String(text) => Some(text),
        Value::Array(parts) => parts.first().and_then(Value::as_str),
        _ => None,
    }
}

fn function_for_route(route_key: &str) -> &'static str {
    match route_key {
        "$connect" => "ConnectFunction",
        "$disconnect" => "DisconnectFunction",
        _ => "MessageFunction",
    }
}

#[test]
fn the_transformed_template_has_every_route_with_its_integration_permission_and_response() {
    let template = Template::load();

    let apis: Vec<_> = template.of_type("AWS::ApiGatewayV2::Api").collect();
    assert_eq!(apis.len(), 1, "one WebSocket API");
    let (api, api_resource) = apis[0];
    assert_eq!(api_resource["Properties"]["ProtocolType"], "WEBSOCKET");
    assert_eq!(
        api_resource["Properties"]["RouteSelectionExpression"],
        "$request.body.action"
    );

    let routes: BTreeMap<String, (&str, &Value)> = template
        .of_type("AWS::ApiGatewayV2::Route")
        .map(|(name, route)| {
            assert_eq!(reference(&route["Properties"]["ApiId"]), Some(api), "{name}'s ApiId");
            let key = route["Properties"]["RouteKey"].as_str().expect("RouteKey").to_owned();
            (key, (name, route))
        })
        .collect();
    let expected: BTreeSet<String> = ["$connect", "$disconnect", "$default"]
        .into_iter()
        .chain(ACTIONS.iter().copied())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        routes.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the routes must be $connect, $disconnect, $default and exactly roomcast_core::commands::ACTIONS"
    );

    let permissions: Vec<&Value> = template
        .of_type("AWS::Lambda::Permission")
        .map(|(_, permission)| &permission["Properties"])
        .collect();
    let responses: Vec<&Value> = template
        .of_type("AWS::ApiGatewayV2::RouteResponse")
        .map(|(_, response)| &response["Properties"])
        .collect();

    for (key, (name, route)) in &routes {
        let properties = &route["Properties"];
        let function = function_for_route(key);

        // The integration: AWS_PROXY to the route's function.
        let target = sub(&properties["Target"]).unwrap_or_else(|| panic!("{name}: Target is not a Fn::Sub"));
        let integration = target
            .strip_prefix("integrations/${")
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{name}: Target {target:?} is not integrations/${{Integration}}"));
        let integration = &template.get(integration)["Properties"];
        assert_eq!(integration["IntegrationType"], "AWS_PROXY", "{name}'s integration");
        let uri = sub(&integration["IntegrationUri"]).unwrap_or_default();
        assert!(
            uri.contains(&format!("${{{function}.Arn}}")) && uri.ends_with("/invocations"),
            "{name}'s integration must invoke {function}: {uri}"
        );

        // The permission: API Gateway may invoke the function for this stage and route.
        let source_suffix = format!("${{WebSocketApi}}/${{StageName}}/{key}");
        assert!(
            permissions.iter().any(|permission| {
                reference(&permission["FunctionName"]) == Some(function)
                    && permission["Principal"] == "apigateway.amazonaws.com"
                    && permission["Action"] == "lambda:InvokeFunction"
                    && sub(&permission["SourceArn"]).is_some_and(|arn| arn.ends_with(&source_suffix))
            }),
            "no Lambda permission lets route {key} invoke {function} (SourceArn ending {source_suffix})"
        );

        // The route response: every message route returns ws-message's body to the client.
        let has_response = responses.iter().any(|response| {
            reference(&response["RouteId"]) == Some(*name) && response["RouteResponseKey"] == "$default"
        });
        if key.starts_with("$connect") || key.starts_with("$disconnect") {
            assert!(!has_response, "{key} needs no route response");
        } else {
            assert_eq!(
                properties["RouteResponseSelectionExpression"], "$default",
                "{name} needs RouteResponseSelectionExpression $default"
            );
            assert!(
                has_response,
                "{name} has no $default route response: its replies would be dropped"
            );
        }
    }

    // The Deployment waits for every route, and the stage serves it.
    let deployments: Vec<_> = template.of_type("AWS::ApiGatewayV2::Deployment").collect();
    assert_eq!(deployments.len(), 1, "one Deployment");
    let (deployment, deployment_resource) = deployments[0];
    let depends_on: BTreeSet<&str> = deployment_resource["DependsOn"]
        .as_array()
        .expect("the Deployment's DependsOn")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (key, (name, _)) in &routes {
        assert!(
            depends_on.contains(name),
            "the Deployment must DependsOn route {key} ({name})"
        );
    }
    let stages: Vec<_> = template.of_type("AWS::ApiGatewayV2::Stage").collect();
    assert_eq!(stages.len(), 1, "one Stage");
    assert_eq!(reference(&stages[0].1["Properties"]["DeploymentId"]), Some(deployment));
}

#[test]
fn the_transformed_template_has_the_table_of_infra_tables_json() {
    let template = Template::load();
    let tables: Vec<_> = template.of_type("AWS::DynamoDB::Table").collect();
    assert_eq!(tables.len(), 1, "one table");
    let properties = &tables[0].1["Properties"];
    let shared: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("infra/tables.json")).expect("infra/tables.json"))
            .expect("infra/tables.json is JSON");
    assert_eq!(
        properties["TimeToLiveSpecification"]["Enabled"], true,
        "the table needs TTL"
    );
    assert_eq!(properties["BillingMode"], "PAY_PER_REQUEST");
    assert!(
        properties["GlobalSecondaryIndexes"]
            .as_array()
            .is_some_and(|gsis| !gsis.is_empty()),
        "the table needs its GSI"
    );
    // Properties the template may add (a name, tags, point-in-time recovery) are fine;
    // every one infra/tables.json defines must be the same.
    for (key, value) in shared.as_object().expect("tables.json is an object") {
        assert_eq!(
            &properties[key], value,
            "template.yaml's table and infra/tables.json disagree on {key}: change both together"
        );
    }
}

#[test]
fn the_transformed_template_wires_functions_kafka_and_least_privilege() {
    let template = Template::load();

    // Every variable a function is given must be one the configuration reads.
    let config = std::fs::read_to_string(root().join("functions/aws/src/config.rs")).expect("config.rs");
    for (name, binary) in FUNCTIONS {
        let function = template.get(name);
        assert_eq!(function["Type"], "AWS::Lambda::Function", "{name}");
        assert_eq!(function["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        assert_eq!(function["Metadata"]["BuildProperties"]["Binary"], *binary, "{name}");
        let properties = &function["Properties"];
        assert_eq!(properties["Runtime"], "provided.al2023", "{name}");
        assert_eq!(properties["Handler"], "bootstrap", "{name}");
        assert_eq!(properties["Architectures"], serde_json::json!(["x86_64"]), "{name}");
        let variables = properties["Environment"]["Variables"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no environment"));
        assert!(variables.contains_key("ROOMCAST_TABLE"), "{name} needs ROOMCAST_TABLE");
        for variable in variables.keys() {
            assert!(
                variable == "RUST_LOG" || config.contains(&format!("\"{variable}\"")),
                "{name} is given {variable}, which functions/aws/src/config.rs never reads"
            );
        }
    }
    let fanout_env = &template.get("FanoutFunction")["Properties"]["Environment"]["Variables"];
    let endpoint = sub(&fanout_env["ROOMCAST_CONNECTIONS_ENDPOINT"]).unwrap_or_default();
    assert!(
        endpoint.starts_with("https://${WebSocketApi}.execute-api.${AWS::Region}.")
            && endpoint.ends_with("/${StageName}"),
        "kafka-fanout's ROOMCAST_CONNECTIONS_ENDPOINT: {endpoint}"
    );
    for producer in ["DisconnectFunction", "MessageFunction"] {
        let variables = &template.get(producer)["Properties"]["Environment"]["Variables"];
        assert_eq!(
            reference(&variables["ROOMCAST_KAFKA_BOOTSTRAP"]),
            Some("KafkaBootstrapServers"),
            "{producer}"
        );
    }

    // The event source: MSK or self-managed Kafka, chosen by conditions, into kafka-fanout.
    let mappings: BTreeMap<&str, &Value> = template.of_type("AWS::Lambda::EventSourceMapping").collect();
    assert_eq!(
        mappings.len(),
        2,
        "an MSK and a self-managed event source mapping: {mappings:?}"
    );
    for (name, mapping) in &mappings {
        let properties = &mapping["Properties"];
        assert_eq!(reference(&properties["FunctionName"]), Some("FanoutFunction"), "{name}");
        assert_eq!(reference(&properties["Topics"][0]), Some("KafkaTopic"), "{name}");
        assert_eq!(reference(&properties["BatchSize"]), Some("KafkaBatchSize"), "{name}");
        assert_eq!(
            reference(&properties["StartingPosition"]),
            Some("KafkaStartingPosition"),
            "{name}"
        );
        assert!(properties.get("MaximumBatchingWindowInSeconds").is_some(), "{name}");
    }
    let msk = mappings.get("MskEventSource").expect("MskEventSource");
    assert_eq!(msk["Condition"], "UseMsk");
    assert_eq!(reference(&msk["Properties"]["EventSourceArn"]), Some("MskClusterArn"));
    let own = mappings
        .get("SelfManagedKafkaEventSource")
        .expect("SelfManagedKafkaEventSource");
    assert_eq!(own["Condition"], "UseSelfManaged");
    assert!(own["Properties"]["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"].is_object());

    // Least privilege: no wildcard actions, no Scan, @connections POST on this API only.
    let mut statements = Vec::new();
    for (_, role) in template.of_type("AWS::IAM::Role") {
        for policy in role["Properties"]["Policies"].as_array().into_iter().flatten() {
            statements.extend(policy["PolicyDocument"]["Statement"].as_array().into_iter().flatten());
        }
    }
    for (_, policy) in template.of_type("AWS::IAM::Policy") {
        statements.extend(
            policy["Properties"]["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten(),
        );
    }
    assert!(!statements.is_empty());
    let actions_of = |statement: &Value| -> Vec<String> {
        match &statement["Action"] {
            Value::String(action) => vec![action.clone()],
            Value::Array(actions) => actions.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    };
    for statement in &statements {
        for action in actions_of(statement) {
            assert!(!action.ends_with('*'), "wildcard action {action} in {statement}");
            assert_ne!(action, "dynamodb:Scan", "nothing may Scan the table");
            if action == "execute-api:ManageConnections" {
                let resource = sub(&statement["Resource"]).unwrap_or_default();
                assert!(
                    resource.contains(":${WebSocketApi}/${StageName}/POST/@connections/"),
                    "ManageConnections must be limited to POST on this API's stage: {resource}"
                );
            }
            if action.starts_with("dynamodb:") {
                let resource = statement["Resource"].to_string();
                assert!(
                    resource.contains("Table"),
                    "{action} on something else than the table: {resource}"
                );
            }
        }
    }
}

// --- sam build ------------------------------------------------------------------------------

/// ELF, 64-bit, x86-64: what a Lambda on x86_64 runs.
fn is_x86_64_elf(bytes: &[u8]) -> bool {
    bytes.len() > 20 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && u16::from_le_bytes([bytes[18], bytes[19]]) == 0x3e
}

#[test]
fn sam_build_makes_a_bootstrap_for_every_function() {
    if std::env::var_os("ROOMCAST_SKIP_SAM_BUILD").is_some_and(|value| value == "1") {
        report("deploy: ROOMCAST_SKIP_SAM_BUILD=1, so `sam build` was NOT checked");
        return;
    }
    // Its own target directory: a sam build holds it for minutes, and must not hold (or
    // rebuild) the one the tests are built in.
    let target = root().join("target").join("sam");
    let build_dir = target.join("build");
    // Other tests run meanwhile, some with timeouts: `nice` leaves them the CPU first.
    let mut command = in_venv("nice");
    command
        .args(["-n", "10"])
        .arg(tools_bin().join("sam"))
        .args(["build", "--template-file", "template.yaml", "--build-dir"])
        .arg(&build_dir)
        .env("CARGO_TARGET_DIR", &target);
    let started = Instant::now();
    let output = run(command);
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "sam build failed after {elapsed:.0?}:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    report(&format!(
        "deploy: sam build took {:.0?} (CARGO_TARGET_DIR={})",
        elapsed,
        target.display()
    ));
    for (name, binary) in FUNCTIONS {
        let bootstrap = build_dir.join(name).join("bootstrap");
        let bytes = std::fs::read(&bootstrap)
            .unwrap_or_else(|error| panic!("sam build made no {}: {error}", bootstrap.display()));
        assert!(is_x86_64_elf(&bytes), "{} is not an x86-64 ELF", bootstrap.display());
        report(&format!(
            "deploy: {name} ({binary}) bootstrap: {} bytes ({:.1} MB)",
            bytes.len(),
            bytes.len() as f64 / 1_000_000.0
        ));
    }
}

// --- infra/ -------------------------------------------------------------------------------

/// The optional MSK stack's outputs are the main template's parameters, by the same names.
#[test]
fn the_msk_stack_outputs_what_the_template_takes() {
    let infra = transformed("infra/msk-serverless.yaml", &[]);
    let outputs = infra["Outputs"].as_object().expect("Outputs");
    let main = Template::load();
    for parameter in [
        "MskClusterArn",
        "KafkaBootstrapServers",
        "KafkaTopic",
        "VpcSubnetIds",
        "VpcSecurityGroupIds",
    ] {
        assert!(
            outputs.contains_key(parameter),
            "infra/msk-serverless.yaml has no output {parameter}"
        );
        assert!(
            main.parameters.contains(parameter),
            "template.yaml has no parameter {parameter}"
        );
    }
    let cluster = infra["Resources"]
        .as_object()
        .expect("Resources")
        .values()
        .find(|resource| resource["Type"] == "AWS::MSK::ServerlessCluster")
        .expect("an MSK Serverless cluster");
    assert_eq!(
        cluster["Properties"]["ClientAuthentication"]["Sasl"]["Iam"]["Enabled"], true,
        "the cluster must use IAM authentication"
    );
}

/// infra/topic/topic.py (the MSK stack's custom resource, also a command) creates the
/// topic over the Kafka protocol, and leaves an existing one alone. Checked in plaintext
/// against the tests' broker; the MSK IAM sign-in itself needs MSK.
#[test]
fn the_topic_script_creates_the_topic_once() {
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let bootstrap = roomcast_tests::tansu::bootstrap();
    let topic = roomcast_tests::unique_name("roomcast-topic-script");
    let create = || {
        let mut command = tool("python3");
        command.args([
            "infra/topic/topic.py",
            "--bootstrap",
            bootstrap,
            "--topic",
            &topic,
            "--partitions",
            "3",
        ]);
        let output = run(command);
        assert!(
            output.status.success(),
            "topic.py failed:\n{}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    };
    assert_eq!(create().trim(), format!("{topic}: created"));
    assert_eq!(create().trim(), format!("{topic}: exists"));

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("a Kafka client");
    let metadata = consumer
        .fetch_metadata(Some(&topic), std::time::Duration::from_secs(30))
        .expect("the topic's metadata");
    let found = metadata
        .topics()
        .iter()
        .find(|found| found.name() == topic)
        .expect("the topic");
    assert_eq!(found.partitions().len(), 3, "{topic}'s partitions");
}
