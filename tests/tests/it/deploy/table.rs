//! The DynamoDB table: the template's is `infra/tables.json`'s, and the roles grant on it
//! exactly the actions the DynamoDB adapter issues.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{actions_of, arn_of, root, statements, sub, Template};

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

/// The DynamoDB actions the roles grant are the ones the DynamoDB adapter
/// (`functions/aws/src/dynamo`, its table set-up aside) issues, on the table and on its
/// index: none missing, which would fail in AWS only, and none left over from code that
/// changed.
#[test]
fn the_roles_grant_the_dynamodb_actions_the_adapter_issues_and_no_others() {
    /// How the SDK calls read in the source, and the IAM action each needs.
    const CALLS: &[(&str, &str)] = &[
        (".get_item()", "dynamodb:GetItem"),
        (".put_item()", "dynamodb:PutItem"),
        (".update_item()", "dynamodb:UpdateItem"),
        (".delete_item()", "dynamodb:DeleteItem"),
        (".query()", "dynamodb:Query"),
        (".batch_get_item()", "dynamodb:BatchGetItem"),
        (".batch_write_item()", "dynamodb:BatchWriteItem"),
        (".transact_get_items()", "dynamodb:GetItem"),
        // A transaction needs the action of each of its parts.
        ("Put::builder()", "dynamodb:PutItem"),
        ("Update::builder()", "dynamodb:UpdateItem"),
        ("Delete::builder()", "dynamodb:DeleteItem"),
        ("ConditionCheck::builder()", "dynamodb:ConditionCheckItem"),
    ];
    let dir = root().join("functions/aws/src/dynamo");
    let mut on_table = BTreeSet::new();
    let mut on_index = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("functions/aws/src/dynamo") {
        let path = entry.expect("a directory entry").path();
        // schema.rs creates the table for local runs and tests; no function calls it.
        if path.extension().is_none_or(|ext| ext != "rs") || path.ends_with("schema.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a source file");
        let code: String = source
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (call, action) in CALLS {
            if code.contains(call) {
                on_table.insert(*action);
            }
        }
        if code.contains(".index_name(") {
            on_index.insert("dynamodb:Query");
        }
    }
    assert!(
        on_table.contains("dynamodb:Query"),
        "found no DynamoDB calls in {}",
        dir.display()
    );

    let template = Template::load();
    let mut granted_table = BTreeSet::new();
    let mut granted_index = BTreeSet::new();
    for (owner, statement) in statements(&template.resources) {
        for action in actions_of(&statement) {
            if !action.starts_with("dynamodb:") {
                continue;
            }
            if arn_of(&statement["Resource"]) == Some("Table") {
                granted_table.insert(action.clone());
            } else if sub(&statement["Resource"]).is_some_and(|arn| arn == "${Table.Arn}/index/*") {
                granted_index.insert(action.clone());
            } else {
                panic!("{owner} grants {action} on {}", statement["Resource"]);
            }
        }
    }
    let granted_table: BTreeSet<&str> = granted_table.iter().map(String::as_str).collect();
    let granted_index: BTreeSet<&str> = granted_index.iter().map(String::as_str).collect();
    assert_eq!(
        granted_table, on_table,
        "the actions granted on the table (left) and those the adapter issues (right) differ"
    );
    assert_eq!(
        granted_index, on_index,
        "the actions granted on the index (left) and those the adapter issues on it (right) differ"
    );
}
