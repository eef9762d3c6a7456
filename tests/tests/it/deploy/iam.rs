//! kafka-archive's role: it may write the history's partitions of the table and nothing
//! else, checked with IAM's own `StringLike` on the partition keys the adapter makes.

use std::collections::BTreeSet;

use serde_json::Value;

use super::functions::sources_of;
use super::*;

/// kafka-archive writes the history and nothing else: the two conditional writes on the
/// table (no read, no Query, no Scan, no DeleteItem), no Kafka produce, no @connections, no
/// VPC; reading the topic in its own group is all its mapping may do. Its settings are the
/// ones `Env::archive` and `Env::store` read.
#[test]
fn kafka_archive_may_write_the_history_and_nothing_else() {
    use roomcast_core::archive::ArchiveConfig;

    let template = Template::load();
    let function = template.get("ArchiveFunction");
    let properties = &function["Properties"];
    let variables = properties["Environment"]["Variables"]
        .as_object()
        .expect("kafka-archive's environment");
    assert_eq!(
        variables.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "ROOMCAST_AUTH",
            "RUST_LOG",
            "SSL_CERT_FILE",
            "ROOMCAST_TABLE",
            "ROOMCAST_HISTORY_DAYS"
        ]),
        "kafka-archive needs the table and the retention; no Kafka producer, no @connections"
    );
    assert_eq!(reference(&variables["ROOMCAST_TABLE"]), Some("Table"));
    assert_eq!(reference(&variables["ROOMCAST_HISTORY_DAYS"]), Some("HistoryDays"));
    let days = &template.document["Parameters"]["HistoryDays"];
    assert_eq!(days["Type"], "Number");
    assert_eq!(
        days["Default"].to_string().trim_matches('"'),
        (ArchiveConfig::default().retention.as_secs() / 86_400).to_string(),
        "HistoryDays' default is the code's"
    );
    assert_eq!(
        days["MinValue"].to_string().trim_matches('"'),
        "1",
        "ROOMCAST_HISTORY_DAYS must be at least 1"
    );
    let source = sources_of("kafka-archive");
    assert!(
        source.contains("env.archive()") && source.contains("env.store("),
        "kafka-archive reads its settings with Env::archive and Env::store"
    );

    let role = arn_of(&properties["Role"]).expect("kafka-archive's role");
    assert!(
        !PRODUCERS.contains(&"ArchiveFunction"),
        "kafka-archive does not produce"
    );
    for (setup, template) in kafka_setups() {
        let stack = template.stack();
        let function = stack.get("ArchiveFunction").expect("ArchiveFunction");
        assert!(
            function["Properties"].get("VpcConfig").is_none(),
            "{setup}: kafka-archive reaches only DynamoDB: no VPC"
        );
        let managed = &stack.get(role).expect("kafka-archive's role")["Properties"]["ManagedPolicyArns"];
        let logs_only = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
        assert_eq!(
            managed,
            &serde_json::json!([{ "Fn::Sub": logs_only }]),
            "{setup}: kafka-archive's role: its logs, no VPC access"
        );
        let granted = granted_to(&stack.resources, role);
        let mut dynamodb = BTreeSet::new();
        for statement in &granted {
            assert_eq!(statement["Effect"], "Allow", "{setup}: {statement}");
            for action in actions_of(statement) {
                let (service, name) = action.split_once(':').unwrap_or_default();
                match service {
                    "dynamodb" => {
                        assert_eq!(
                            arn_of(&statement["Resource"]),
                            Some("Table"),
                            "{setup}: kafka-archive's {action} on the table only (no index): {statement}"
                        );
                        dynamodb.insert(action.clone());
                    }
                    // What its MSK event source mapping needs, in its own group (see
                    // the wiring test).
                    "kafka" => assert!(
                        ["DescribeClusterV2", "GetBootstrapBrokers"].contains(&name),
                        "{setup}: {action}"
                    ),
                    "kafka-cluster" => assert!(
                        [
                            "Connect",
                            "DescribeClusterDynamicConfiguration",
                            "DescribeTopic",
                            "ReadData",
                            "DescribeGroup",
                            "AlterGroup"
                        ]
                        .contains(&name),
                        "{setup}: kafka-archive may read the topic, never write it: {action}"
                    ),
                    "ec2" => assert!(
                        name.ends_with("NetworkInterface")
                            || name.ends_with("NetworkInterfaces")
                            || name.starts_with("Describe"),
                        "{setup}: {action}"
                    ),
                    "secretsmanager" => {
                        assert_eq!(name, "GetSecretValue", "{setup}");
                        assert_eq!(reference(&statement["Resource"]), Some("KafkaSecretArn"), "{setup}");
                    }
                    _ => panic!("{setup}: kafka-archive's role grants {action}: {statement}"),
                }
            }
        }
        // Only in the history's partitions: every conversation's key is among the allowed
        // leading keys, and no key of a connection, a user, a room, a nickname.
        for statement in granted.iter().filter(|statement| {
            actions_of(statement)
                .iter()
                .any(|action| action.starts_with("dynamodb:"))
        }) {
            let patterns = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                .as_array()
                .unwrap_or_else(|| {
                    panic!("{setup}: kafka-archive's table access must be limited by dynamodb:LeadingKeys: {statement}")
                });
            assert_eq!(
                statement["Condition"].as_object().map(|condition| condition.len()),
                Some(1),
                "{statement}"
            );
            let patterns: Vec<&str> = patterns.iter().filter_map(Value::as_str).collect();
            let allowed = |key: &str| patterns.iter().any(|pattern| string_like(pattern, key));
            for key in history_keys() {
                assert!(
                    allowed(&key),
                    "{setup}: kafka-archive may not write {key:?}: {patterns:?}"
                );
            }
            for key in other_keys() {
                assert!(!allowed(&key), "{setup}: kafka-archive may write {key:?}: {patterns:?}");
            }
        }
        assert_eq!(
            dynamodb,
            BTreeSet::from(["dynamodb:PutItem".to_owned(), "dynamodb:UpdateItem".to_owned()]),
            "{setup}: kafka-archive keeps a message with a conditional PutItem, applies an edit or \
             a delete with a conditional UpdateItem, and does nothing else to the table"
        );
    }
}

/// IAM's `StringLike`: `*` matches any run of characters, `?` any one character.
fn string_like(pattern: &str, value: &str) -> bool {
    let (pattern, value): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // matches[j]: whether the pattern read so far matches value[..j].
    let mut matches = vec![false; value.len() + 1];
    matches[0] = true;
    for p in pattern {
        let mut next = vec![false; value.len() + 1];
        for j in 0..=value.len() {
            next[j] = match p {
                '*' => matches[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matches[j - 1],
                c => j > 0 && matches[j - 1] && value[j - 1] == c,
            };
        }
        matches = next;
    }
    matches[value.len()]
}

/// Partition keys of the history, as the DynamoDB adapter makes them: rooms and direct
/// conversations, with user ids that hold `#`, `*` and other characters.
fn history_keys() -> Vec<String> {
    use roomcast_aws::dynamo::keys;
    use roomcast_core::history::Conversation;
    use roomcast_core::{RoomName, UserId};

    let mut found = vec![
        keys::conversation(&Conversation::Room(RoomName::trusted("general"))),
        keys::conversation(&Conversation::Room(RoomName::trusted("admin"))),
    ];
    for (a, b) in [("u1", "u2"), ("auth0|abc#1", "HIST#x*"), ("é", "")] {
        found.push(keys::conversation(&Conversation::direct(
            UserId::new(a),
            UserId::new(b),
        )));
        // Each user's list of direct conversations.
        found.push(keys::conversations_of(&UserId::new(a)));
    }
    // How far each partition is archived.
    found.push(keys::archived(0, 0));
    found.push(keys::archived(255, 2));
    found
}

/// Partition keys of everything else in the table: connections, users, rooms (catalog and
/// memberships), nicknames.
fn other_keys() -> Vec<String> {
    use roomcast_aws::dynamo::keys;
    use roomcast_core::{ConnectionId, Nick, RoomName, UserId};

    vec![
        keys::connection(&ConnectionId::new("HIST#abc=")),
        keys::user(&UserId::new("HIST#u1")),
        keys::room(&RoomName::trusted("general")),
        keys::nick(&Nick::trusted("alice")),
    ]
}

#[test]
fn string_like_is_iams() {
    assert!(string_like("HIST#*", "HIST#ROOM#a"));
    assert!(string_like("HIST#*", "HIST#"));
    assert!(!string_like("HIST#*", "HIST"));
    assert!(!string_like("HIST#*", "ROOM#HIST#"));
    assert!(string_like("a?c*", "abcdef"));
    assert!(!string_like("a?c", "ac"));
    assert!(string_like("*", ""));
}
