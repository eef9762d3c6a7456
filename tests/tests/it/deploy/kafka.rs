//! Kafka in each set-up a stack can have (self-managed, with SCRAM, MSK): one event source
//! mapping per consumer in a group of its own, and ws-message's read of the log within its
//! timeout.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;

/// In each Kafka set-up the stack really has one event source mapping per consumer, on the
/// same topic, in two different consumer groups, reading with the right credentials.
#[test]
fn each_kafka_setup_has_one_mapping_per_consumer_in_its_own_group() {
    for (setup, template) in kafka_setups() {
        let stack = template.stack();
        assert!(stack.rule_failures().is_empty(), "{setup}: {:?}", stack.rule_failures());
        let mappings: BTreeMap<&str, &Value> = stack.of_type("AWS::Lambda::EventSourceMapping").collect();
        let msk = setup == "MSK";
        let expected: BTreeSet<&str> = CONSUMERS
            .iter()
            .map(|consumer| {
                if msk {
                    consumer.msk_mapping
                } else {
                    consumer.self_managed_mapping
                }
            })
            .collect();
        assert_eq!(mappings.keys().copied().collect::<BTreeSet<_>>(), expected, "{setup}");

        let mut groups = BTreeSet::new();
        for consumer in CONSUMERS {
            let name = if msk {
                consumer.msk_mapping
            } else {
                consumer.self_managed_mapping
            };
            let properties = &mappings[name]["Properties"];
            assert_eq!(
                reference(&properties["FunctionName"]),
                Some(consumer.function),
                "{setup}: {name}"
            );
            assert_eq!(
                properties["Topics"],
                serde_json::json!([{"Ref": "KafkaTopic"}]),
                "{setup}: {name}"
            );
            let config = if msk {
                "AmazonManagedKafkaEventSourceConfig"
            } else {
                "SelfManagedKafkaEventSourceConfig"
            };
            let group = reference(&properties[config]["ConsumerGroupId"])
                .unwrap_or_else(|| panic!("{setup}: {name} has no {config}.ConsumerGroupId"));
            groups.insert(stack.parameter(group).to_string());
            if msk {
                assert_eq!(
                    reference(&properties["EventSourceArn"]),
                    Some("MskClusterArn"),
                    "{setup}: {name}"
                );
            }
            let secret = properties.get("SourceAccessConfigurations");
            if setup == "self-managed with SCRAM" {
                assert_eq!(
                    secret,
                    Some(&serde_json::json!([{"Type": "SASL_SCRAM_512_AUTH", "URI": {"Ref": "KafkaSecretArn"}}])),
                    "{setup}: {name}"
                );
            } else {
                assert!(secret.is_none(), "{setup}: {name}: {secret:?}");
            }
            // The role it reads with has what the mapping needs in this set-up.
            let role = arn_of(&stack.get(consumer.function).expect("the consumer")["Properties"]["Role"])
                .expect("the consumer's role");
            let actions: BTreeSet<String> = granted_to(&stack.resources, role).iter().flat_map(actions_of).collect();
            let needed: &[&str] = match setup {
                "MSK" => &[
                    "kafka:DescribeClusterV2",
                    "kafka:GetBootstrapBrokers",
                    "ec2:CreateNetworkInterface",
                    "kafka-cluster:Connect",
                    "kafka-cluster:ReadData",
                    "kafka-cluster:DescribeGroup",
                    "kafka-cluster:AlterGroup",
                ],
                "self-managed with SCRAM" => &["secretsmanager:GetSecretValue"],
                _ => &[],
            };
            for action in needed {
                assert!(
                    actions.contains(*action),
                    "{setup}: {role} needs {action} for {name}: {actions:?}"
                );
            }
        }
        assert_eq!(
            groups.len(),
            CONSUMERS.len(),
            "{setup}: one consumer group each: {groups:?}"
        );
    }
}

/// ws-message reads the history (`history`: a Query; `edit`, `delete`, a reply: a GetItem
/// of the message) and, for a message kafka-archive has not stored yet, its record in
/// Kafka (on MSK: ReadData on the topic; a group named, never joined), before producing: its timeout covers
/// the read and the produce, each bounded by the delivery timeout, under API Gateway's
/// 29 s integration limit. It does not wait for the archive: nothing configures a wait.
#[test]
fn ws_message_reads_the_history_and_the_log_within_its_timeout() {
    let template = Template::load();
    let properties = &template.get("MessageFunction")["Properties"];
    let variables = &properties["Environment"]["Variables"];
    assert!(
        variables.get("ROOMCAST_ARCHIVE_LAG_MS").is_none()
            && template.document["Parameters"].get("ArchiveLagMs").is_none(),
        "nothing waits for the archive any more"
    );
    // A read back and a produce, each within the delivery timeout (5 s by default), then
    // the reply: a few seconds to spare.
    let timeout = number(&properties["Timeout"]);
    assert!(
        (5 + 5 + 3..=29).contains(&timeout),
        "ws-message's Timeout {timeout} s must cover a read back and a produce comfortably, \
         and stay within API Gateway's 29 s"
    );
    let msk = Template::with(&[
        ("JwksUrl", JWKS_URL),
        ("MskClusterArn", MSK_CLUSTER_ARN),
        ("VpcSubnetIds", "subnet-0a,subnet-0b"),
        ("VpcSecurityGroupIds", "sg-0a"),
    ])
    .stack();
    for function in ["MessageFunction", "HttpApiFunction"] {
        let role = arn_of(&msk.get(function).expect("the function")["Properties"]["Role"]).expect("its role");
        let on_topic: BTreeSet<String> = granted_to(&msk.resources, role)
            .iter()
            .filter(|statement| statement["Resource"].to_string().contains(":topic/"))
            .flat_map(actions_of)
            .collect();
        for action in [
            "kafka-cluster:DescribeTopic",
            "kafka-cluster:ReadData",
            "kafka-cluster:WriteData",
        ] {
            assert!(
                on_topic.contains(action),
                "MSK: {function} needs {action} on the topic: {on_topic:?}"
            );
        }
        // The group the reader names (librdkafka needs one to assign), which it never joins.
        let on_groups: Vec<(String, Vec<String>)> = granted_to(&msk.resources, role)
            .iter()
            .filter(|statement| statement["Resource"].to_string().contains(":group/"))
            .map(|statement| (statement["Resource"].to_string(), actions_of(statement)))
            .collect();
        assert!(
            on_groups.iter().any(|(resource, actions)| resource
                .contains(&format!("/{}", roomcast_aws::kafka::READ_BACK_GROUP))
                && actions == &["kafka-cluster:DescribeGroup"]),
            "MSK: {function} may describe the read-back group, and do nothing else with it: {on_groups:?}"
        );
        assert!(
            on_groups
                .iter()
                .all(|(_, actions)| !actions.iter().any(|action| action == "kafka-cluster:AlterGroup")),
            "MSK: {function} joins no group: {on_groups:?}"
        );
    }

    let role = arn_of(&properties["Role"]).expect("ws-message's role");
    let on_table: BTreeSet<String> = granted_to(&template.resources, role)
        .iter()
        .filter(|statement| arn_of(&statement["Resource"]) == Some("Table"))
        .flat_map(actions_of)
        .collect();
    for action in ["dynamodb:GetItem", "dynamodb:Query"] {
        assert!(
            on_table.contains(action),
            "ws-message reads the history with {action}: {on_table:?}"
        );
    }
}
