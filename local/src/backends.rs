//! The backends the settings ask for — embedded or real — created and made ready: the
//! table and the topic exist before the first client connects.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_config::{Region, SdkConfig};
use roomcast_aws::dynamo::{ensure_table, DynamoStore};
use roomcast_aws::files::{s3_client, S3Files};
use roomcast_aws::kafka::{ensure_topic, KafkaPublisher, KafkaSettings};
use roomcast_core::memory::{DirectoryFiles, MemoryHistory, MemoryLog, MemoryStore};
use roomcast_core::model::Room;
use roomcast_core::ports::StoreError;
use roomcast_core::{Files, History, Ports, Publisher, RoomName, Store, UserId};

use crate::kafka_source::KafkaSource;
use crate::settings::Settings;
use crate::source::{MemorySource, RecordSource};

/// Records the embedded log keeps per partition: enough for any local session.
const EMBEDDED_RETENTION: usize = 100_000;

pub struct Backends {
    /// The store, the history, the event log and the file store (the S3 API, or the
    /// embedded directory store).
    pub ports: Ports,
    /// Where kafka-fanout's event source mapping reads.
    pub fan_out_source: Box<dyn RecordSource>,
    /// Where kafka-archive's reads: the same topic in a consumer group of its own, or the
    /// same embedded log from its own positions.
    pub archive_source: Box<dyn RecordSource>,
    pub store_description: String,
    /// The embedded directory store, whose URLs the gateway serves (`None` with S3).
    pub directory: Option<Arc<DirectoryFiles>>,
    pub files_description: String,
}

/// AWS SDK configuration for local endpoints: the region and credentials from the
/// environment when set, else placeholders (local endpoints accept any).
pub async fn sdk_config() -> SdkConfig {
    let mut loader = roomcast_aws::config::sdk_config_loader();
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
        loader = loader.region(Region::new("us-east-1"));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_credential("local"));
    }
    loader.load().await
}

fn aws_credential(name: &str) -> aws_sdk_apigatewaymanagement::config::Credentials {
    aws_sdk_apigatewaymanagement::config::Credentials::new(name, name, None, None, "roomcast-local")
}

/// Opens the backends; `origin` is where clients reach the gateway (its page, and the
/// embedded file store under [`crate::files::FILES_PATH`]).
pub async fn open(settings: &Settings, sdk: &SdkConfig, origin: &str) -> anyhow::Result<Backends> {
    if settings.kafka_bootstrap.is_some() && settings.consumer_group == settings.archive_consumer_group {
        anyhow::bail!(
            "kafka-fanout and kafka-archive are both in consumer group {:?}: each needs its own \
             (--consumer-group, --archive-consumer-group), or each would get only part of the records",
            settings.consumer_group
        );
    }
    let (store, history, store_description): (Arc<dyn Store>, Arc<dyn History>, String) =
        match &settings.dynamodb_endpoint {
            None => (
                Arc::new(MemoryStore::new()),
                Arc::new(MemoryHistory::default()),
                "embedded in-memory store".to_owned(),
            ),
            Some(endpoint) => {
                let client = roomcast_aws::config::dynamodb_client(sdk, Some(endpoint));
                ensure_table(&client, &settings.table)
                    .await
                    .with_context(|| format!("cannot create or reach table {} at {endpoint}", settings.table))?;
                let description = format!("DynamoDB at {endpoint}, table {}", settings.table);
                let store = Arc::new(DynamoStore::new(client, &settings.table));
                (store.clone(), store, description)
            }
        };
    let partitions = settings.partitions.max(1);
    type Sources = (Box<dyn RecordSource>, Box<dyn RecordSource>);
    let (publisher, (fan_out_source, archive_source)): (Arc<dyn Publisher>, Sources) = match &settings.kafka_bootstrap {
        None => {
            // Offsets from the time in microseconds: see `MemoryLog::starting_at`.
            let first_offset = roomcast_core::clock::now_ms().saturating_mul(1000);
            let log = Arc::new(
                MemoryLog::new(&settings.topic, partitions as usize, EMBEDDED_RETENTION).starting_at(first_offset),
            );
            let sources: Sources = (
                Box::new(MemorySource::new(log.clone())),
                Box::new(MemorySource::new(log.clone())),
            );
            (log, sources)
        }
        Some(bootstrap) => {
            ensure_topic(bootstrap, &settings.topic, partitions, 1, Duration::from_secs(15))
                .await
                .with_context(|| format!("cannot create or reach topic {} at {bootstrap}", settings.topic))?;
            let publisher = KafkaPublisher::new(&KafkaSettings {
                bootstrap_servers: bootstrap.clone(),
                topic: settings.topic.clone(),
                // The functions' own setting, read as they read it.
                delivery_timeout: roomcast_aws::config::Env::from_process().kafka_delivery_timeout()?,
                // The trigger's consumers speak plaintext, so the producer does too.
                security: Default::default(),
            })?;
            let fetch_wait = Duration::from_millis(settings.kafka_fetch_wait_ms);
            let sources: Sources = (
                Box::new(KafkaSource::new(
                    bootstrap,
                    &settings.topic,
                    &settings.consumer_group,
                    fetch_wait,
                )?),
                Box::new(KafkaSource::new(
                    bootstrap,
                    &settings.topic,
                    &settings.archive_consumer_group,
                    fetch_wait,
                )?),
            );
            (Arc::new(publisher), sources)
        }
    };
    seed_rooms(&*store, &settings.rooms).await?;
    let (files, directory, files_description) = open_files(settings, sdk, origin).await?;
    Ok(Backends {
        ports: Ports {
            store,
            history,
            publisher,
            files,
        },
        directory,
        files_description,
        fan_out_source,
        archive_source,
        store_description,
    })
}

type OpenedFiles = (Arc<dyn Files>, Option<Arc<DirectoryFiles>>, String);

/// The S3 API's bucket (created when missing), or the directory store under a key made now:
/// its URLs are good only while this process runs.
async fn open_files(settings: &Settings, sdk: &SdkConfig, origin: &str) -> anyhow::Result<OpenedFiles> {
    if let Some(endpoint) = &settings.s3_endpoint {
        let files = S3Files::new(s3_client(sdk, Some(endpoint)), &settings.s3_bucket);
        files
            .ensure_bucket()
            .await
            .with_context(|| format!("cannot create or reach bucket {} at {endpoint}", settings.s3_bucket))?;
        // The page is served by this gateway, so the browser uploads from its origin.
        let origins = vec![origin.to_owned(), origin.replace("127.0.0.1", "localhost")];
        files.allow_origins(&origins).await.with_context(|| {
            format!(
                "cannot let the page's origin {origin} use bucket {}",
                settings.s3_bucket
            )
        })?;
        let description = format!("S3 at {endpoint}, bucket {}", settings.s3_bucket);
        return Ok((Arc::new(files), None, description));
    }
    let dir = settings.files_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "roomcast-files-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ))
    });
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| anyhow::anyhow!("no random bytes for the file store's key"))?;
    let files_url = format!("{origin}{}", crate::files::FILES_PATH);
    let directory = Arc::new(
        DirectoryFiles::new(&dir, &files_url, key)
            .with_context(|| format!("cannot create the file store's directory {}", dir.display()))?,
    );
    let description = format!("embedded directory {}, served at {files_url}", dir.display());
    Ok((directory.clone(), Some(directory), description))
}

async fn seed_rooms(store: &dyn Store, rooms: &[String]) -> anyhow::Result<()> {
    for name in rooms.iter().map(|name| name.trim()).filter(|name| !name.is_empty()) {
        let name = RoomName::parse(name, 64).map_err(|error| anyhow::anyhow!("room {name:?}: {}", error.message))?;
        let room = Room {
            name,
            created_by: UserId::new("roomcast-local"),
            created_at_ms: roomcast_core::clock::now_ms(),
        };
        // The operator's rooms are not held to the catalog's limit (they count towards it).
        match store.create_room(&room, usize::MAX).await {
            Ok(()) | Err(StoreError::RoomExists) => {}
            Err(error) => return Err(error).context("cannot create the start-up rooms"),
        }
    }
    Ok(())
}
