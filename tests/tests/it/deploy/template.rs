//! What the deploy checks share: `template.yaml` after the SAM transform ([`Template`]), the
//! functions, producers and consumers it must have, the parameter values the checks give
//! it, and readers of its intrinsics and IAM policies.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{run, text, tool, Stack};

/// Each function of the template: its logical id and the binary cargo-lambda builds.
pub(super) const FUNCTIONS: &[(&str, &str)] = &[
    ("ConnectFunction", "ws-connect"),
    ("DisconnectFunction", "ws-disconnect"),
    ("MessageFunction", "ws-message"),
    ("FanoutFunction", "kafka-fanout"),
    ("ArchiveFunction", "kafka-archive"),
    ("AuthorizerFunction", "ws-authorizer"),
    ("HttpApiFunction", "http-api"),
];

/// Variables the functions are given that libraries read, not roomcast's code: the log
/// filter (tracing-subscriber) and the root certificates' bundle (rustls-native-certs, for
/// the AWS SDK's TLS).
pub(super) const LIBRARY_VARIABLES: &[&str] = &["RUST_LOG", "SSL_CERT_FILE"];

/// The functions that produce to Kafka (presence, messages), each with the same producer
/// settings, VPC placement and MSK permissions.
pub(super) const PRODUCERS: &[&str] = &[
    "ConnectFunction",
    "DisconnectFunction",
    "MessageFunction",
    "FanoutFunction",
    "HttpApiFunction",
];

/// A function that reads the topic, each in a consumer group of its own: its event source
/// mappings (one for MSK, one for self-managed Kafka, chosen by conditions), the
/// parameter naming its group, and the policy that lets its MSK mapping read.
pub(super) struct Consumer {
    pub(super) function: &'static str,
    pub(super) group: &'static str,
    pub(super) default_group: &'static str,
    pub(super) msk_mapping: &'static str,
    pub(super) self_managed_mapping: &'static str,
    pub(super) msk_policy: &'static str,
}

pub(super) const CONSUMERS: &[Consumer] = &[
    Consumer {
        function: "FanoutFunction",
        group: "KafkaConsumerGroupId",
        default_group: "roomcast-fanout",
        msk_mapping: "MskEventSource",
        self_managed_mapping: "SelfManagedKafkaEventSource",
        msk_policy: "MskConsumerPolicy",
    },
    Consumer {
        function: "ArchiveFunction",
        group: "ArchiveConsumerGroupId",
        default_group: "roomcast-archive",
        msk_mapping: "ArchiveMskEventSource",
        self_managed_mapping: "ArchiveSelfManagedKafkaEventSource",
        msk_policy: "ArchiveMskConsumerPolicy",
    },
];

pub(super) const MSK_CLUSTER_ARN: &str = "arn:aws:kafka:eu-west-1:123456789012:cluster/roomcast/abc";
pub(super) const KAFKA_SECRET_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:roomcast-kafka-AbCdEf";

/// What every transform of the template is given: the one parameter without a default,
/// and a key source, which the `Rules` demand with the default `AuthMode` (required).
pub(super) const BOOTSTRAP: (&str, &str) = ("KafkaBootstrapServers", "b-1.example:9096,b-2.example:9096");
pub(super) const JWKS_URL: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example/.well-known/jwks.json";
/// The issuer of [`JWKS_URL`]'s tokens, which the `Rules` demand with it.
pub(super) const JWKS_ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example";
pub(super) const JWT_SECRET_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:roomcast-jwt-AbCdEf";

/// The CloudFormation that CloudFormation itself would make of a SAM template, as JSON.
pub(super) fn transformed(template: &str, parameters: &[&str]) -> Value {
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

/// `template.yaml` after the SAM transform, for one set of parameter values.
pub(super) struct Template {
    /// The parameter values it was transformed with (the others take their defaults).
    pub(super) given: BTreeMap<String, String>,
    /// The whole transformed template.
    pub(super) document: Value,
    pub(super) parameters: BTreeSet<String>,
    pub(super) resources: BTreeMap<String, Value>,
}

impl Template {
    /// The transformed template with the default parameters (so `AuthMode` required, with
    /// a JWKS URL as the `Rules` demand), made once for the tests that read it.
    pub(super) fn load() -> &'static Self {
        Self::with(&[("JwksUrl", JWKS_URL)])
    }

    /// The transformed template with these parameter values (and [`BOOTSTRAP`], and
    /// [`JWKS_ISSUER`] with a `JwksUrl` unless `JwtIssuer` is given), made once per
    /// distinct set.
    pub(super) fn with(parameters: &[(&str, &str)]) -> &'static Self {
        type Cache = std::sync::Mutex<BTreeMap<Vec<String>, &'static Template>>;
        static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
        let given_name = |wanted: &str| parameters.iter().any(|(name, _)| *name == wanted);
        let issuer = (given_name("JwksUrl") && !given_name("JwtIssuer")).then_some(("JwtIssuer", JWKS_ISSUER));
        let given: BTreeMap<String, String> = std::iter::once(BOOTSTRAP)
            .chain(issuer)
            .chain(parameters.iter().copied())
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let arguments: Vec<String> = given.iter().map(|(name, value)| format!("{name}={value}")).collect();
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(template) = cache.get(&arguments) {
            return template;
        }
        let document = transformed(
            "template.yaml",
            &arguments.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let resources = document["Resources"]
            .as_object()
            .expect("Resources")
            .iter()
            .map(|(name, resource)| (name.clone(), resource.clone()))
            .collect();
        let parameters = document["Parameters"]
            .as_object()
            .expect("Parameters")
            .keys()
            .cloned()
            .collect();
        let template: &'static Template = Box::leak(Box::new(Template {
            given,
            document,
            parameters,
            resources,
        }));
        cache.insert(arguments, template);
        template
    }

    pub(super) fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, resource)| resource["Type"] == kind)
            .map(|(name, resource)| (name.as_str(), resource))
    }

    pub(super) fn get(&self, name: &str) -> &Value {
        self.resources
            .get(name)
            .unwrap_or_else(|| panic!("no resource {name} in the transformed template"))
    }

    /// The stack CloudFormation would create from it with its parameter values.
    pub(super) fn stack(&self) -> Stack<'_> {
        Stack::new(self)
    }
}

/// `{"Ref": "X"}` → `X`.
pub(super) fn reference(value: &Value) -> Option<&str> {
    value.get("Ref").and_then(Value::as_str)
}

/// A number in the template, which YAML may have left as a string (`Default: "5000"`).
pub(super) fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// The text of a `Fn::Sub` (its first form, or the string of its list form).
pub(super) fn sub(value: &Value) -> Option<&str> {
    match value.get("Fn::Sub")? {
        Value::String(text) => Some(text),
        Value::Array(parts) => parts.first().and_then(Value::as_str),
        _ => None,
    }
}

/// `{"Fn::GetAtt": ["X", "Arn"]}` → `X`.
pub(super) fn arn_of(value: &Value) -> Option<&str> {
    match value.get("Fn::GetAtt")? {
        Value::Array(parts) if parts.get(1).is_some_and(|part| part == "Arn") => parts[0].as_str(),
        Value::String(text) => text.strip_suffix(".Arn"),
        _ => None,
    }
}

/// Every IAM policy statement in the template's roles and policies, `Fn::If` branches
/// included (both sides: a statement only some parameters enable is still checked).
pub(super) fn statements(resources: &BTreeMap<String, Value>) -> Vec<(String, Value)> {
    fn collect(owner: &str, value: &Value, found: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::Array(statements)) = object.get("Statement") {
                    found.extend(statements.iter().map(|statement| (owner.to_owned(), statement.clone())));
                }
                for inner in object.values() {
                    collect(owner, inner, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect(owner, item, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for (name, resource) in resources {
        match resource["Type"].as_str() {
            Some("AWS::IAM::Role") => collect(name, &resource["Properties"]["Policies"], &mut found),
            Some("AWS::IAM::Policy") => collect(name, &resource["Properties"]["PolicyDocument"], &mut found),
            _ => {}
        }
    }
    found
}

pub(super) fn actions_of(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(action) => vec![action.clone()],
        Value::Array(actions) => actions.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// The roles a policy is attached to (`Roles: [{"Ref": role}]`), those of both branches of
/// an `Fn::If` included (a role that exists only under a condition is attached so).
pub(super) fn policy_roles(policy: &Value) -> BTreeSet<&str> {
    policy["Properties"]["Roles"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|role| match role["Fn::If"].as_array() {
            Some(branches) => branches.iter().skip(1).filter_map(reference).collect(),
            None => reference(role).into_iter().collect::<Vec<_>>(),
        })
        .filter(|role| *role != "AWS::NoValue")
        .collect()
}

/// Every policy statement a role is granted in `resources`: its own `Policies` and those of
/// every `AWS::IAM::Policy` attached to it.
pub(super) fn granted_to(resources: &BTreeMap<String, Value>, role: &str) -> Vec<Value> {
    let attached: BTreeMap<String, Value> = resources
        .iter()
        .filter(|(name, resource)| {
            name.as_str() == role || (resource["Type"] == "AWS::IAM::Policy" && policy_roles(resource).contains(role))
        })
        .map(|(name, resource)| (name.clone(), resource.clone()))
        .collect();
    statements(&attached)
        .into_iter()
        .map(|(_, statement)| statement)
        .collect()
}

/// The Kafka set-ups a stack can have: self-managed without and with SASL/SCRAM, and MSK
/// (whose producers need the VPC).
pub(super) fn kafka_setups() -> [(&'static str, &'static Template); 3] {
    [
        ("self-managed", Template::with(&[("JwksUrl", JWKS_URL)])),
        (
            "self-managed with SCRAM",
            Template::with(&[("JwksUrl", JWKS_URL), ("KafkaSecretArn", KAFKA_SECRET_ARN)]),
        ),
        (
            "MSK",
            Template::with(&[
                ("JwksUrl", JWKS_URL),
                ("MskClusterArn", MSK_CLUSTER_ARN),
                ("VpcSubnetIds", "subnet-0a,subnet-0b"),
                ("VpcSecurityGroupIds", "sg-0a"),
            ]),
        ),
    ]
}
