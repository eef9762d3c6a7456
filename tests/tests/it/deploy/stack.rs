//! [`Stack`]: CloudFormation's own part of a deployment - parameters, `Conditions`,
//! `Fn::If`, `AWS::NoValue`, `Rules` - evaluated offline for a transformed template.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{reference, Template};

/// What CloudFormation makes of a transformed template for given parameter values: each
/// parameter's value (given, else its default), the `Conditions`, the resources whose
/// `Condition` holds with every `Fn::If` chosen and every `AWS::NoValue` left out, and the
/// verdict of the `Rules`. Supports the intrinsics these templates use in conditions and
/// rules (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`,
/// `Fn::EachMemberEquals`, `Ref` of a parameter) and fails the test on any other, so that
/// it never guesses.
pub(super) struct Stack<'a> {
    pub(super) template: &'a Template,
    pub(super) resources: BTreeMap<String, Value>,
}

impl<'a> Stack<'a> {
    pub(super) fn new(template: &'a Template) -> Self {
        let mut stack = Stack {
            template,
            resources: BTreeMap::new(),
        };
        stack.resources = template
            .resources
            .iter()
            .filter(|(_, resource)| {
                resource
                    .get("Condition")
                    .and_then(Value::as_str)
                    .is_none_or(|condition| stack.condition(condition))
            })
            .filter_map(|(name, resource)| Some((name.clone(), stack.resolve(resource)?)))
            .collect();
        stack
    }

    /// A parameter's value as CloudFormation passes it to intrinsics: a string, or a list
    /// of strings for a `CommaDelimitedList`.
    pub(super) fn parameter(&self, name: &str) -> Value {
        let declared = &self.template.document["Parameters"][name];
        assert!(declared.is_object(), "no parameter {name}");
        let value = match self.template.given.get(name) {
            Some(value) => value.clone(),
            None => match &declared["Default"] {
                Value::String(value) => value.clone(),
                Value::Number(value) => value.to_string(),
                other => panic!("parameter {name} has no value and no default ({other})"),
            },
        };
        if declared["Type"] == "CommaDelimitedList" {
            Value::Array(value.split(',').map(|item| Value::String(item.to_owned())).collect())
        } else {
            Value::String(value)
        }
    }

    /// Whether the template's condition `name` holds for these parameter values.
    pub(super) fn condition(&self, name: &str) -> bool {
        let definition = &self.template.document["Conditions"][name];
        assert!(!definition.is_null(), "no condition {name}");
        self.truth(definition)
    }

    /// The value of an operand of a condition or rule function: a string, a parameter's
    /// value (`Ref`), or a `Fn::Join` of a list.
    fn operand(&self, value: &Value) -> Value {
        if value.is_string() {
            return value.clone();
        }
        if let Some(name) = reference(value) {
            return self.parameter(name);
        }
        if let Some([Value::String(delimiter), list]) =
            value.get("Fn::Join").and_then(Value::as_array).map(Vec::as_slice)
        {
            let items = match self.operand(list) {
                Value::Array(items) => items,
                other => panic!("Fn::Join of a non-list {other}"),
            };
            let items: Vec<&str> = items.iter().map(|item| item.as_str().expect("a string")).collect();
            return Value::String(items.join(delimiter));
        }
        panic!("unsupported operand {value}")
    }

    /// A condition function (in `Conditions`, `Fn::If` or a rule), evaluated.
    fn truth(&self, value: &Value) -> bool {
        let object = value.as_object().unwrap_or_else(|| panic!("not a condition: {value}"));
        assert_eq!(object.len(), 1, "not a condition: {value}");
        let (function, arguments) = object.iter().next().expect("one entry");
        let list = || {
            arguments
                .as_array()
                .unwrap_or_else(|| panic!("{function} takes a list: {value}"))
        };
        match function.as_str() {
            "Condition" => self.condition(arguments.as_str().expect("a condition name")),
            "Fn::Equals" => {
                let [left, right] = list().as_slice() else {
                    panic!("{value}")
                };
                self.operand(left) == self.operand(right)
            }
            "Fn::Not" => {
                let [inner] = list().as_slice() else { panic!("{value}") };
                !self.truth(inner)
            }
            "Fn::And" => list().iter().all(|inner| self.truth(inner)),
            "Fn::Or" => list().iter().any(|inner| self.truth(inner)),
            "Fn::EachMemberEquals" => {
                let [members, expected] = list().as_slice() else {
                    panic!("{value}")
                };
                let expected = self.operand(expected);
                match self.operand(members) {
                    Value::Array(members) => members.iter().all(|member| *member == expected),
                    other => panic!("Fn::EachMemberEquals on a non-list {other}"),
                }
            }
            _ => panic!("unsupported condition function {function} in {value}"),
        }
    }

    /// `value` with every `Fn::If` decided; `None` where it is `AWS::NoValue`.
    pub(super) fn resolve(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Object(object) => {
                if reference(value) == Some("AWS::NoValue") {
                    return None;
                }
                if let Some(arguments) = object.get("Fn::If").filter(|_| object.len() == 1) {
                    let [condition, then, otherwise] = arguments.as_array().expect("Fn::If's list").as_slice() else {
                        panic!("Fn::If takes three arguments: {value}")
                    };
                    let chosen = if self.condition(condition.as_str().expect("a condition name")) {
                        then
                    } else {
                        otherwise
                    };
                    return self.resolve(chosen);
                }
                Some(Value::Object(
                    object
                        .iter()
                        .filter_map(|(key, inner)| Some((key.clone(), self.resolve(inner)?)))
                        .collect(),
                ))
            }
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|item| self.resolve(item)).collect(),
            )),
            _ => Some(value.clone()),
        }
    }

    /// The `AssertDescription` of every rule assertion that fails: CloudFormation refuses
    /// to create or update the stack if there is one.
    pub(super) fn rule_failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let Some(rules) = self.template.document.get("Rules").and_then(Value::as_object) else {
            return failures;
        };
        for (name, rule) in rules {
            if rule
                .get("RuleCondition")
                .is_some_and(|condition| !self.truth(condition))
            {
                continue;
            }
            for assertion in rule["Assertions"].as_array().expect("Assertions") {
                if !self.truth(&assertion["Assert"]) {
                    failures.push(format!(
                        "{name}: {}",
                        assertion["AssertDescription"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        failures
    }

    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.resources.get(name)
    }

    pub(super) fn of_type<'b>(&'b self, kind: &'b str) -> impl Iterator<Item = (&'b str, &'b Value)> + 'b {
        self.resources
            .iter()
            .filter(move |(_, resource)| resource["Type"] == kind)
            .map(|(name, resource)| (name.as_str(), resource))
    }
}
