//! The table definition, read from `infra/tables.json` (the one place it is written, in the
//! shape of CloudFormation's `AWS::DynamoDB::Table` properties), and [`ensure_table`], which
//! creates it for local mode and tests.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::describe_time_to_live::DescribeTimeToLiveError;
use aws_sdk_dynamodb::operation::update_time_to_live::UpdateTimeToLiveError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType as SdkKeyType, Projection,
    ProjectionType as SdkProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use serde::Deserialize;

/// `infra/tables.json`, compiled in so the binary and the SAM template cannot disagree
/// about which file they read.
pub const TABLE_JSON: &str = include_str!("../../../../infra/tables.json");

/// How long [`ensure_table`] waits for a new table (and its index) to become ACTIVE.
const ACTIVE_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    #[error("infra/tables.json is not a table definition this code understands")]
    Definition(#[source] serde_json::Error),
    #[error("cannot build the {0} request")]
    Build(&'static str, #[source] BuildError),
    #[error("CreateTable {table} failed")]
    CreateTable {
        table: String,
        #[source]
        source: Box<SdkError<CreateTableError>>,
    },
    #[error("DescribeTable {table} failed")]
    DescribeTable {
        table: String,
        #[source]
        source: Box<SdkError<DescribeTableError>>,
    },
    #[error("table {table} is not ACTIVE after {waited:?} (last status: {status})")]
    NotActive {
        table: String,
        waited: Duration,
        status: String,
    },
    #[error("DescribeTimeToLive {table} failed")]
    DescribeTimeToLive {
        table: String,
        #[source]
        source: Box<SdkError<DescribeTimeToLiveError>>,
    },
    #[error("UpdateTimeToLive {table} failed")]
    UpdateTimeToLive {
        table: String,
        #[source]
        source: Box<SdkError<UpdateTimeToLiveError>>,
    },
}

/// `AWS::DynamoDB::Table` properties, minus `TableName`. Unknown fields are refused so a
/// property added to the file cannot be silently left out of the tables this code creates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TableDefinition {
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyElement>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexDef>,
    pub billing_mode: BillingMode,
    pub time_to_live_specification: Option<TtlSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AttributeDef {
    pub attribute_name: String,
    pub attribute_type: AttributeType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AttributeType {
    S,
    N,
    B,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct KeyElement {
    pub attribute_name: String,
    pub key_type: KeyType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum KeyType {
    Hash,
    Range,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ProjectionDef {
    pub projection_type: ProjectionType,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProjectionType {
    All,
    KeysOnly,
    Include,
}

/// Only on-demand capacity: provisioned throughput would need numbers this file does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingMode {
    PayPerRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TtlSpec {
    pub attribute_name: String,
    pub enabled: bool,
}

impl TableDefinition {
    /// The definition in `infra/tables.json`.
    pub fn bundled() -> Result<Self, DynamoError> {
        serde_json::from_str(TABLE_JSON).map_err(DynamoError::Definition)
    }

    fn attribute_definitions(&self) -> Result<Vec<AttributeDefinition>, DynamoError> {
        self.attribute_definitions
            .iter()
            .map(|def| {
                AttributeDefinition::builder()
                    .attribute_name(&def.attribute_name)
                    .attribute_type(match def.attribute_type {
                        AttributeType::S => ScalarAttributeType::S,
                        AttributeType::N => ScalarAttributeType::N,
                        AttributeType::B => ScalarAttributeType::B,
                    })
                    .build()
                    .map_err(|e| DynamoError::Build("CreateTable", e))
            })
            .collect()
    }

    fn global_secondary_indexes(&self) -> Result<Vec<GlobalSecondaryIndex>, DynamoError> {
        self.global_secondary_indexes
            .iter()
            .map(|index| {
                let projection = Projection::builder()
                    .projection_type(match index.projection.projection_type {
                        ProjectionType::All => SdkProjectionType::All,
                        ProjectionType::KeysOnly => SdkProjectionType::KeysOnly,
                        ProjectionType::Include => SdkProjectionType::Include,
                    })
                    .set_non_key_attributes(
                        (!index.projection.non_key_attributes.is_empty())
                            .then(|| index.projection.non_key_attributes.clone()),
                    )
                    .build();
                GlobalSecondaryIndex::builder()
                    .index_name(&index.index_name)
                    .set_key_schema(Some(key_schema(&index.key_schema)?))
                    .projection(projection)
                    .build()
                    .map_err(|e| DynamoError::Build("CreateTable", e))
            })
            .collect()
    }
}

fn key_schema(elements: &[KeyElement]) -> Result<Vec<KeySchemaElement>, DynamoError> {
    elements
        .iter()
        .map(|element| {
            KeySchemaElement::builder()
                .attribute_name(&element.attribute_name)
                .key_type(match element.key_type {
                    KeyType::Hash => SdkKeyType::Hash,
                    KeyType::Range => SdkKeyType::Range,
                })
                .build()
                .map_err(|e| DynamoError::Build("CreateTable", e))
        })
        .collect()
}

/// Creates the table from `infra/tables.json` unless it exists, waits until it and its
/// indexes are ACTIVE (at most two minutes), then turns on TTL.
///
/// For local mode and tests; in AWS the SAM template creates the table. Every call made
/// here is bounded by the client's own timeouts, so build the client with them.
pub async fn ensure_table(client: &Client, table: &str) -> Result<(), DynamoError> {
    let definition = TableDefinition::bundled()?;
    let created = client
        .create_table()
        .table_name(table)
        .set_attribute_definitions(Some(definition.attribute_definitions()?))
        .set_key_schema(Some(key_schema(&definition.key_schema)?))
        .set_global_secondary_indexes(
            (!definition.global_secondary_indexes.is_empty())
                .then(|| definition.global_secondary_indexes())
                .transpose()?,
        )
        .billing_mode(match definition.billing_mode {
            BillingMode::PayPerRequest => aws_sdk_dynamodb::types::BillingMode::PayPerRequest,
        })
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table, "created the DynamoDB table"),
        // Already there (perhaps still being created by someone else): wait for it below.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(CreateTableError::is_resource_in_use_exception) =>
        {
            tracing::debug!(table, "the DynamoDB table exists");
        }
        Err(error) => {
            return Err(DynamoError::CreateTable {
                table: table.to_owned(),
                source: Box::new(error),
            })
        }
    }
    wait_until_active(client, table).await?;
    if let Some(ttl) = definition.time_to_live_specification.as_ref().filter(|ttl| ttl.enabled) {
        enable_ttl(client, table, &ttl.attribute_name).await?;
    }
    Ok(())
}

/// Polls DescribeTable. The SDK's own waiter sleeps at least 20 s between polls, which
/// would make every test (and local start-up) wait for nothing.
async fn wait_until_active(client: &Client, table: &str) -> Result<(), DynamoError> {
    let started = Instant::now();
    let mut attempt: u32 = 1;
    loop {
        let described =
            client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| DynamoError::DescribeTable {
                    table: table.to_owned(),
                    source: Box::new(e),
                })?;
        let description = described.table();
        let status = description.and_then(|t| t.table_status());
        let indexes_active = description.is_some_and(|t| {
            t.global_secondary_indexes()
                .iter()
                .all(|index| index.index_status() == Some(&IndexStatus::Active))
        });
        if status == Some(&TableStatus::Active) && indexes_active {
            return Ok(());
        }
        if started.elapsed() >= ACTIVE_WAIT {
            let status = status.map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned());
            return Err(DynamoError::NotActive {
                table: table.to_owned(),
                waited: started.elapsed(),
                status,
            });
        }
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(roomcast_core::backoff::doubling(
            Duration::from_millis(100),
            Duration::from_secs(2),
            attempt,
        ))
        .await;
    }
}

async fn enable_ttl(client: &Client, table: &str, attribute: &str) -> Result<(), DynamoError> {
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| DynamoError::DescribeTimeToLive {
            table: table.to_owned(),
            source: Box::new(e),
        })?;
    if let Some(current) = described.time_to_live_description() {
        let on = matches!(
            current.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        if on && current.attribute_name() == Some(attribute) {
            return Ok(());
        }
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(attribute)
        .enabled(true)
        .build()
        .map_err(|e| DynamoError::Build("UpdateTimeToLive", e))?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Two processes racing through `ensure_table`: the other one enabled it first.
        Err(error) if error.message().is_some_and(|m| m.contains("already enabled")) => Ok(()),
        Err(error) => Err(DynamoError::UpdateTimeToLive {
            table: table.to_owned(),
            source: Box::new(error),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::{attr, GSI1};
    use super::*;

    #[test]
    fn the_bundled_definition_matches_the_names_the_store_uses() {
        let definition = TableDefinition::bundled().expect("infra/tables.json parses");
        let key = |elements: &[KeyElement]| -> Vec<(String, KeyType)> {
            elements
                .iter()
                .map(|e| (e.attribute_name.clone(), e.key_type))
                .collect()
        };
        assert_eq!(
            key(&definition.key_schema),
            [
                (attr::PK.to_owned(), KeyType::Hash),
                (attr::SK.to_owned(), KeyType::Range)
            ]
        );
        let [index] = definition.global_secondary_indexes.as_slice() else {
            panic!(
                "expected exactly one GSI, got {:?}",
                definition.global_secondary_indexes
            );
        };
        assert_eq!(index.index_name, GSI1);
        assert_eq!(
            key(&index.key_schema),
            [
                (attr::GSI1_PK.to_owned(), KeyType::Hash),
                (attr::GSI1_SK.to_owned(), KeyType::Range)
            ]
        );
        assert_eq!(index.projection.projection_type, ProjectionType::All);
        for name in [attr::PK, attr::SK, attr::GSI1_PK, attr::GSI1_SK] {
            assert!(
                definition
                    .attribute_definitions
                    .iter()
                    .any(|d| d.attribute_name == name && d.attribute_type == AttributeType::S),
                "{name} is not defined as a string attribute"
            );
        }
        assert_eq!(
            definition.attribute_definitions.len(),
            4,
            "only key attributes may be declared"
        );
        assert_eq!(
            definition.time_to_live_specification,
            Some(TtlSpec {
                attribute_name: attr::EXPIRES_AT.to_owned(),
                enabled: true
            })
        );
        assert!(definition.global_secondary_indexes().is_ok() && definition.attribute_definitions().is_ok());
    }

    #[test]
    fn a_table_name_or_unknown_property_is_refused() {
        let mut value: serde_json::Value = serde_json::from_str(TABLE_JSON).unwrap();
        value["TableName"] = "x".into();
        assert!(serde_json::from_value::<TableDefinition>(value).is_err());
    }
}
