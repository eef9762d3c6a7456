//! The functions as the template deploys them: each one's build, runtime and variables (every
//! one read by its code), the producers' and consumers' Kafka wiring, least privilege, and
//! the settings the deployer sets through parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

/// The Rust source compiled into a function's binary: its crate's `src` and that of every
/// workspace crate it depends on, through path dependencies (declared in the root
/// `Cargo.toml`'s `[workspace.dependencies]`).
pub(super) fn sources_of(binary: &str) -> String {
    fn workspace_paths() -> BTreeMap<String, PathBuf> {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
        manifest
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.split_once('=')?;
                let path = rest.split("path = \"").nth(1)?.split('"').next()?;
                Some((name.trim().to_owned(), root().join(path)))
            })
            .collect()
    }
    fn rust_files(dir: &Path, into: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                rust_files(&path, into);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                into.push_str(&std::fs::read_to_string(&path).expect("a source file"));
            }
        }
    }
    let paths = workspace_paths();
    let mut seen = BTreeSet::new();
    let mut queue = vec![root().join("functions").join(binary)];
    let mut source = String::new();
    while let Some(dir) = queue.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        rust_files(&dir.join("src"), &mut source);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap_or_else(|error| panic!("{}/Cargo.toml: {error}", dir.display()));
        let dependencies = manifest
            .split("\n[")
            .filter(|section| section.starts_with("dependencies]"))
            .flat_map(str::lines)
            .skip(1);
        for line in dependencies {
            let name = line.split(['=', '.']).next().unwrap_or_default().trim();
            if let Some(path) = paths.get(name) {
                queue.push(path.clone());
            }
        }
    }
    source
}

#[test]
fn the_transformed_template_wires_functions_kafka_and_least_privilege() {
    let template = Template::load();
    let stack = template.stack();

    // Every variable a function is given must be one its code reads.
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
        if *binary == "ws-authorizer" {
            assert!(
                !variables.contains_key("ROOMCAST_TABLE"),
                "the authorizer has no business with the table"
            );
        } else {
            assert!(variables.contains_key("ROOMCAST_TABLE"), "{name} needs ROOMCAST_TABLE");
        }
        assert_eq!(
            reference(&variables["ROOMCAST_AUTH"]),
            Some("AuthMode"),
            "{name} needs ROOMCAST_AUTH"
        );
        // provided.al2023's bundle (Amazon Linux's ca-certificates): the SDK reads it alone.
        assert_eq!(
            variables["SSL_CERT_FILE"], "/etc/pki/tls/certs/ca-bundle.crt",
            "{name}: SSL_CERT_FILE"
        );
        let source = sources_of(binary);
        for variable in variables.keys() {
            assert!(
                LIBRARY_VARIABLES.contains(&variable.as_str()) || source.contains(&format!("\"{variable}\"")),
                "{name} is given {variable}, which no source of {binary} (nor of the workspace crates it uses) reads"
            );
        }
    }
    // ... and every function of the template is one of FUNCTIONS, so that `sam build` is
    // checked to make its bootstrap.
    let listed: BTreeSet<&str> = FUNCTIONS.iter().map(|(name, _)| *name).collect();
    for (name, _) in template.of_type("AWS::Lambda::Function") {
        assert!(
            listed.contains(name),
            "{name} is missing from FUNCTIONS (deploy/template.rs): add it with its binary"
        );
    }
    let fanout_env = &template.get("FanoutFunction")["Properties"]["Environment"]["Variables"];
    let endpoint = sub(&fanout_env["ROOMCAST_CONNECTIONS_ENDPOINT"]).unwrap_or_default();
    assert!(
        endpoint.starts_with("https://${WebSocketApi}.execute-api.${AWS::Region}.")
            && endpoint.ends_with("/${StageName}"),
        "kafka-fanout's ROOMCAST_CONNECTIONS_ENDPOINT: {endpoint}"
    );

    // The producers: the same Kafka settings, the same VPC placement, each role allowed to
    // produce to MSK (the policy is there only with MSK; its Roles are checked regardless).
    let message = &template.get("MessageFunction")["Properties"];
    let producer_policy = template.get("MskProducerPolicy");
    assert_eq!(producer_policy["Condition"], "UseMsk");
    let producer_roles = policy_roles(producer_policy);
    for producer in PRODUCERS {
        let properties = &template.get(producer)["Properties"];
        let variables = &properties["Environment"]["Variables"];
        assert_eq!(
            reference(&variables["ROOMCAST_KAFKA_BOOTSTRAP"]),
            Some("KafkaBootstrapServers"),
            "{producer}"
        );
        assert_eq!(
            reference(&variables["ROOMCAST_TOPIC"]),
            Some("KafkaTopic"),
            "{producer}"
        );
        for variable in ["ROOMCAST_KAFKA_AUTH", "ROOMCAST_KAFKA_SECRET_ARN"] {
            assert_eq!(
                variables[variable], message["Environment"]["Variables"][variable],
                "{producer}'s {variable} must be ws-message's"
            );
        }
        assert_eq!(
            properties["VpcConfig"], message["VpcConfig"],
            "{producer} must reach the brokers as ws-message does"
        );
        let role = arn_of(&properties["Role"]).unwrap_or_else(|| panic!("{producer} needs a role of its own"));
        assert!(
            producer_roles.contains(role),
            "MskProducerPolicy must be attached to {producer}'s role {role}: {producer_roles:?}"
        );
        // The VPC policy (network interfaces on *) only when the function is in a VPC.
        let managed = &template.get(role)["Properties"]["ManagedPolicyArns"];
        assert_eq!(managed["Fn::If"][0], "InVpc", "{role}'s managed policies: {managed}");
    }
    assert_eq!(
        producer_roles.len(),
        PRODUCERS.len(),
        "only the producers may produce: {producer_roles:?}"
    );

    // The consumers: kafka-fanout and kafka-archive, each through an MSK or a self-managed
    // event source mapping (chosen by conditions), on the same topic with the same batch
    // and starting position, each in its own consumer group.
    let mappings: BTreeMap<&str, &Value> = template.of_type("AWS::Lambda::EventSourceMapping").collect();
    let expected: BTreeSet<&str> = CONSUMERS
        .iter()
        .flat_map(|consumer| [consumer.msk_mapping, consumer.self_managed_mapping])
        .collect();
    assert_eq!(
        mappings.keys().copied().collect::<BTreeSet<_>>(),
        expected,
        "an MSK and a self-managed event source mapping for each consumer"
    );
    let fanout_mapping = &mappings["MskEventSource"]["Properties"];
    for consumer in CONSUMERS {
        let function = consumer.function;
        for name in [consumer.msk_mapping, consumer.self_managed_mapping] {
            let properties = &mappings[name]["Properties"];
            assert_eq!(reference(&properties["FunctionName"]), Some(function), "{name}");
            assert_eq!(
                properties["Topics"],
                serde_json::json!([{"Ref": "KafkaTopic"}]),
                "{name}"
            );
            assert_eq!(reference(&properties["BatchSize"]), Some("KafkaBatchSize"), "{name}");
            // Fan-out starts where the deployer says; the archive always at the oldest
            // record kept, so history misses nothing (its writes are idempotent).
            if function == "ArchiveFunction" {
                assert_eq!(properties["StartingPosition"], "TRIM_HORIZON", "{name}");
            } else {
                assert_eq!(
                    reference(&properties["StartingPosition"]),
                    Some("KafkaStartingPosition"),
                    "{name}"
                );
            }
            assert_eq!(
                properties["MaximumBatchingWindowInSeconds"], fanout_mapping["MaximumBatchingWindowInSeconds"],
                "{name}"
            );
        }
        let msk = mappings[consumer.msk_mapping];
        assert_eq!(msk["Condition"], "UseMsk", "{}", consumer.msk_mapping);
        assert_eq!(reference(&msk["Properties"]["EventSourceArn"]), Some("MskClusterArn"));
        assert_eq!(
            reference(&msk["Properties"]["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"]),
            Some(consumer.group),
            "{}'s consumer group",
            consumer.msk_mapping
        );
        assert_eq!(
            msk["DependsOn"], consumer.msk_policy,
            "{}: Lambda checks the role's permissions when the mapping is created",
            consumer.msk_mapping
        );
        let own = mappings[consumer.self_managed_mapping];
        assert_eq!(own["Condition"], "UseSelfManaged", "{}", consumer.self_managed_mapping);
        let own = &own["Properties"];
        assert!(own["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"].is_object());
        assert_eq!(
            reference(&own["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"]),
            Some(consumer.group),
            "{}'s consumer group",
            consumer.self_managed_mapping
        );
        assert_eq!(
            own["SourceAccessConfigurations"],
            mappings["SelfManagedKafkaEventSource"]["Properties"]["SourceAccessConfigurations"],
            "{}: the same SASL/SCRAM secret as kafka-fanout's",
            consumer.self_managed_mapping
        );
        assert_eq!(
            template.document["Parameters"][consumer.group]["Default"], consumer.default_group,
            "{}",
            consumer.group
        );

        // Each mapping reads with its function's role, in its own group only.
        let role = arn_of(&template.get(function)["Properties"]["Role"])
            .unwrap_or_else(|| panic!("{function} needs a role of its own"));
        let policy = template.get(consumer.msk_policy);
        assert_eq!(policy["Condition"], "UseMsk", "{}", consumer.msk_policy);
        assert_eq!(
            policy_roles(policy),
            BTreeSet::from([role]),
            "{} belongs to {function}'s role",
            consumer.msk_policy
        );
        let groups: Vec<String> = statements(&BTreeMap::from([(consumer.msk_policy.to_owned(), policy.clone())]))
            .into_iter()
            .filter(|(_, statement)| actions_of(statement).iter().any(|action| action.ends_with("Group")))
            .map(|(_, statement)| statement["Resource"].to_string())
            .collect();
        assert_eq!(
            groups.len(),
            1,
            "{}: one statement on the group: {groups:?}",
            consumer.msk_policy
        );
        assert!(
            groups[0].contains(&format!(":group/${{Cluster}}/${{{}}}", consumer.group)),
            "{} may join {} only: {}",
            consumer.msk_policy,
            consumer.group,
            groups[0]
        );
    }
    let secret_readers: BTreeSet<&str> = CONSUMERS
        .iter()
        .map(|consumer| consumer.function)
        .chain(PRODUCERS.iter().copied())
        .map(|function| arn_of(&template.get(function)["Properties"]["Role"]).expect("a role"))
        .collect();
    assert_eq!(
        policy_roles(template.get("SelfManagedKafkaSecretPolicy")),
        secret_readers,
        "SelfManagedKafkaSecretPolicy belongs to the consumers' roles, whose mappings read the secret, \
         and the producers', which read it at cold start"
    );

    // By default the two groups differ; a Rule refuses a stack where they would not.
    let groups: BTreeSet<String> = CONSUMERS
        .iter()
        .map(|consumer| stack.parameter(consumer.group).to_string())
        .collect();
    assert_eq!(groups.len(), CONSUMERS.len(), "one consumer group each: {groups:?}");
    assert!(stack.rule_failures().is_empty(), "{:?}", stack.rule_failures());
    let shared = Template::with(&[
        ("JwksUrl", JWKS_URL),
        ("KafkaConsumerGroupId", "roomcast"),
        ("ArchiveConsumerGroupId", "roomcast"),
    ]);
    let failures = shared.stack().rule_failures();
    assert!(
        failures.len() == 1 && failures[0].starts_with("ConsumerGroupsDiffer:"),
        "one consumer group for both consumers must be refused: {failures:?}"
    );

    // Least privilege: no wildcard actions, no Scan, @connections POST on this API only,
    // secrets read one by one.
    let everything = statements(&template.resources);
    assert!(!everything.is_empty());
    for (owner, statement) in &everything {
        for action in actions_of(statement) {
            assert!(
                !action.ends_with('*'),
                "wildcard action {action} in {owner}: {statement}"
            );
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
            if action.starts_with("secretsmanager:") {
                assert_eq!(action, "secretsmanager:GetSecretValue", "{owner}");
                let secret = reference(&statement["Resource"]);
                assert!(
                    matches!(secret, Some("JwtSecretArn" | "KafkaSecretArn")),
                    "{owner} may read only the secret a parameter names: {statement}"
                );
            }
        }
    }
    // With these parameters (MSK off, no secrets, no VPC), what the stack really grants.
    for (owner, statement) in statements(&stack.resources) {
        for action in actions_of(&statement) {
            assert!(
                !action.starts_with("secretsmanager:") && !action.starts_with("kafka") && !action.starts_with("ec2:"),
                "{owner} is granted {action} in a stack with neither MSK nor secrets"
            );
        }
    }
}

/// kafka-fanout's memory (its CPU share, which signing a large room's posts needs) and its
/// posts in flight are the deployer's to set, with the code's defaults.
#[test]
fn kafka_fanout_takes_its_memory_and_concurrency_from_parameters() {
    let template = Template::load();
    let properties = &template.get("FanoutFunction")["Properties"];
    assert_eq!(reference(&properties["MemorySize"]), Some("FanoutMemorySize"));
    assert_eq!(
        reference(&properties["Environment"]["Variables"]["ROOMCAST_FANOUT_CONCURRENCY"]),
        Some("FanoutConcurrency")
    );
    let parameter = |name: &str, field: &str| number(&template.document["Parameters"][name][field]);
    assert_eq!(
        parameter("FanoutConcurrency", "Default"),
        roomcast_core::fan_out::FanOutConfig::default().concurrency as u64,
        "FanoutConcurrency's default is the code's"
    );
    assert!(
        parameter("FanoutConcurrency", "MinValue") >= 1,
        "ROOMCAST_FANOUT_CONCURRENCY must be at least 1"
    );
    // Lambda's own bounds for MemorySize: a value outside them fails the deploy, late.
    assert!(parameter("FanoutMemorySize", "MinValue") >= 128);
    assert!(parameter("FanoutMemorySize", "MaxValue") <= 10_240);
}

/// The parameter `parameter` of the default template, which gives each of `functions` its
/// `variable`.
fn one_parameter(functions: &[&str], variable: &str, parameter: &str) -> &'static Value {
    let template = Template::load();
    for function in functions {
        let variables = &template.get(function)["Properties"]["Environment"]["Variables"];
        assert_eq!(reference(&variables[variable]), Some(parameter), "{function}");
    }
    &template.document["Parameters"][parameter]
}

/// The two functions that write chat messages make their ids with the log's epoch
/// (`ROOMCAST_LOG_EPOCH`, docs/deploy.md): one parameter gives both the same, with the
/// code's default and the range `Env::domain` accepts, so a deployer who makes the topic
/// anew raises it in one place.
#[test]
fn both_writers_of_chat_messages_take_the_log_epoch_from_one_parameter() {
    let parameter = one_parameter(
        &["MessageFunction", "HttpApiFunction"],
        "ROOMCAST_LOG_EPOCH",
        "LogEpoch",
    );
    assert_eq!(
        number(&parameter["Default"]),
        u64::from(roomcast_core::Config::default().log_epoch)
    );
    assert_eq!(
        (number(&parameter["MinValue"]), number(&parameter["MaxValue"])),
        (0, 255)
    );
    let read = |value: &str| {
        roomcast_aws::config::Env::new(|name: &str| (name == "ROOMCAST_LOG_EPOCH").then(|| value.to_owned()))
            .domain()
            .map(|config| config.log_epoch)
    };
    assert_eq!(read("255").ok(), Some(255));
    assert!(read("256").is_err(), "the parameter's range is the reader's");
}

/// http-api, the function that takes nickname leases, takes their length from a parameter
/// with the code's default (ws-message, which runs the same commands with the same
/// settings, is given it too); a lease of a few seconds at least, so that a polling client
/// keeps its name between two polls.
#[test]
fn http_api_takes_the_nickname_lease_from_a_parameter() {
    let parameter = one_parameter(
        &["HttpApiFunction", "MessageFunction"],
        "ROOMCAST_NICK_LEASE_SECS",
        "NickLeaseSecs",
    );
    assert_eq!(
        number(&parameter["Default"]),
        roomcast_core::Config::default().nick_lease.as_secs()
    );
    assert!(
        number(&parameter["MinValue"]) >= 10,
        "a lease must outlast a poll interval"
    );
}
