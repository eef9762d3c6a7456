//! infra/: the optional MSK stack and the topic-creating script, against the main template.

use super::*;

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
