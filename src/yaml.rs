//! The one module that touches serde_yaml (deprecated upstream): swapping the YAML crate
//! means changing this file only.

pub use serde_yaml::{Mapping, Value};

pub fn to_string<T: serde::Serialize>(v: &T) -> Result<String, String> {
    serde_yaml::to_string(v).map_err(|e| e.to_string())
}

pub fn from_str<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_yaml::from_str(s).map_err(|e| e.to_string())
}

pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_yaml::from_value(v).map_err(|e| e.to_string())
}

/// Any serializable value as YAML (`Null` if it cannot be represented).
pub fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_yaml::to_value(v).unwrap_or(Value::Null)
}

pub fn float(v: f64) -> Value {
    Value::Number(serde_yaml::Number::from(v))
}

pub fn int(v: i64) -> Value {
    Value::Number(serde_yaml::Number::from(v))
}

pub fn string(s: impl Into<String>) -> Value {
    Value::String(s.into())
}
