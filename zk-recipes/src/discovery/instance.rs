//! [`ServiceInstance`], [`ServiceType`] and [`UriSpec`]: the JSON Curator's
//! `curator-x-discovery` stores in an instance node, field for field.
//!
//! Curator's default serializer (`JsonInstanceSerializer`, compatible mode) writes, in this
//! order: `name`, `id`, `address`, `port`, `sslPort`, `payload`, `registrationTimeUTC`,
//! `serviceType`, `uriSpec` (absent values as `null`), and no `enabled` field. We write the
//! same bytes; reading, unknown fields are ignored as Curator does, and `enabled` is kept
//! when a writer in Curator's non-compatible mode put it there.
//!
//! The payload is any JSON value. Curator's payload is a Java object written by Jackson:
//! strings, numbers and booleans as themselves, other classes with an `"@class"` member
//! naming the Java class. A Java service that reads our instances as `ServiceInstance<String>`
//! needs a string payload (or none).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How an instance is registered (Curator's `ServiceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceType {
    /// An ephemeral node: gone with the registering session (the default).
    #[default]
    Dynamic,
    /// A persistent node.
    Static,
    /// A persistent node.
    Permanent,
    /// An ephemeral sequential node (the id gets ZooKeeper's sequence suffix).
    DynamicSequential,
}

impl ServiceType {
    /// `true` for the ephemeral types (Curator's `isDynamic`).
    pub fn is_dynamic(self) -> bool {
        matches!(self, ServiceType::Dynamic | ServiceType::DynamicSequential)
    }
}

/// One part of a [`UriSpec`]: literal text, or a variable name (`{address}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UriPart {
    /// The text, or the variable's name.
    pub value: String,
    /// `true` for a variable.
    pub variable: bool,
}

/// A URI template (Curator's `UriSpec`), e.g. `{scheme}://{address}:{port}`.
///
/// ```
/// use zk_recipes::discovery::{ServiceInstance, UriSpec};
///
/// let spec = UriSpec::parse("{scheme}://{address}:{port}/api")?;
/// let instance = ServiceInstance::new("orders").address("10.0.0.7").port(8080);
/// assert_eq!(spec.build(&instance, &[]), "http://10.0.0.7:8080/api");
/// # Ok::<(), zk_recipes::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct UriSpec {
    /// The parts, in order.
    #[serde(default)]
    pub parts: Vec<UriPart>,
}

impl UriSpec {
    /// Parses a template as Curator does: `{name}` is a variable (name trimmed), everything
    /// else literal text.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for a nested `{`, a `}` without `{`, or an unclosed `{`.
    pub fn parse(spec: &str) -> Result<UriSpec> {
        let mut parts = Vec::new();
        let mut inside = false;
        let mut text = String::new();
        let flush = |text: &mut String, inside: bool, parts: &mut Vec<UriPart>| {
            if !text.is_empty() {
                let value = if inside {
                    text.trim().to_owned()
                } else {
                    text.clone()
                };
                parts.push(UriPart {
                    value,
                    variable: inside,
                });
                text.clear();
            }
        };
        for c in spec.chars() {
            match c {
                '{' if inside => {
                    return Err(Error::InvalidValue(format!(
                        "uri spec {spec:?}: {{ inside a variable"
                    )));
                }
                '}' if !inside => {
                    return Err(Error::InvalidValue(format!(
                        "uri spec {spec:?}: }} without {{"
                    )));
                }
                '{' | '}' => {
                    flush(&mut text, inside, &mut parts);
                    inside = !inside;
                }
                c => text.push(c),
            }
        }
        if inside {
            return Err(Error::InvalidValue(format!(
                "uri spec {spec:?}: variable not closed"
            )));
        }
        flush(&mut text, inside, &mut parts);
        Ok(UriSpec { parts })
    }

    /// The URI for `instance`, as Curator's `UriSpec.build(instance, variables)`: the
    /// variables `scheme` (`https` when the instance has an SSL port, else `http`), `name`,
    /// `id`, `address`, `port`, `ssl-port`, `registration-time-utc`, `service-type`, `[` and
    /// `]`, then `variables` (which override them). Unknown variables become empty.
    pub fn build(&self, instance: &ServiceInstance, variables: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if !part.variable {
                out.push_str(&part.value);
                continue;
            }
            let name = part.value.as_str();
            if let Some((_, value)) = variables.iter().rev().find(|(k, _)| *k == name) {
                out.push_str(value);
                continue;
            }
            let value = match name {
                "[" => Some("{".to_owned()),
                "]" => Some("}".to_owned()),
                "scheme" => Some(
                    if instance.ssl_port.is_some() {
                        "https"
                    } else {
                        "http"
                    }
                    .to_owned(),
                ),
                "name" => Some(instance.name.clone()),
                "id" => Some(instance.id.clone()),
                "address" => instance.address.clone(),
                "port" => instance.port.map(|p| p.to_string()),
                "ssl-port" => instance.ssl_port.map(|p| p.to_string()),
                "registration-time-utc" => Some(instance.registration_time_utc.to_string()),
                "service-type" => Some(
                    match instance.service_type {
                        ServiceType::Dynamic => "dynamic",
                        ServiceType::Static => "static",
                        ServiceType::Permanent => "permanent",
                        ServiceType::DynamicSequential => "dynamic_sequential",
                    }
                    .to_owned(),
                ),
                _ => None,
            };
            if let Some(value) = value {
                out.push_str(&value);
            }
        }
        out
    }
}

/// One registered instance of a service: the JSON of its node (see the [module
/// docs](self)). Build one with [`ServiceInstance::new`] and the setters.
///
/// ```
/// use zk_recipes::discovery::{ServiceInstance, ServiceType};
///
/// let instance = ServiceInstance::new("orders")
///     .id("orders-1")
///     .address("10.0.0.7")
///     .port(8080)
///     .payload(serde_json::json!("eu-west"));
/// let json = instance.to_json();
/// assert!(json.starts_with(r#"{"name":"orders","id":"orders-1","address":"10.0.0.7","port":8080,"sslPort":null,"payload":"eu-west","registrationTimeUTC":"#));
/// assert_eq!(ServiceInstance::from_json(json.as_bytes())?, instance);
/// assert_eq!(instance.service_type, ServiceType::Dynamic);
/// # Ok::<(), zk_recipes::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServiceInstance {
    /// The service's name (the node's parent under the base path).
    #[serde(default)]
    pub name: String,
    /// This instance's id, unique within the service (the node's name).
    #[serde(default)]
    pub id: String,
    /// Where to reach it.
    #[serde(default)]
    pub address: Option<String>,
    /// Its port.
    #[serde(default)]
    pub port: Option<i32>,
    /// Its TLS port.
    #[serde(default)]
    pub ssl_port: Option<i32>,
    /// Anything else, as JSON (see the [module docs](self)).
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// When it was registered, milliseconds since the Unix epoch.
    #[serde(rename = "registrationTimeUTC", default)]
    pub registration_time_utc: i64,
    /// How the node is created.
    #[serde(default)]
    pub service_type: ServiceType,
    /// A URI template for clients.
    #[serde(default)]
    pub uri_spec: Option<UriSpec>,
    /// Curator's `enabled` flag, written only when set (Curator's default serializer never
    /// writes it; readers treat a missing flag as enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl ServiceInstance {
    /// A [`Dynamic`](ServiceType::Dynamic) instance of `name` with a random (v4 UUID) id,
    /// registered now, without address, ports, payload or URI spec (Curator's builder
    /// defaults, except that Curator fills in a local IP address).
    pub fn new(name: impl Into<String>) -> ServiceInstance {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        ServiceInstance {
            name: name.into(),
            id: uuid::Uuid::new_v4().hyphenated().to_string(),
            address: None,
            port: None,
            ssl_port: None,
            payload: None,
            registration_time_utc: now,
            service_type: ServiceType::Dynamic,
            uri_spec: None,
            enabled: None,
        }
    }

    /// Sets the id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the address.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Sets the port.
    pub fn port(mut self, port: i32) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the TLS port.
    pub fn ssl_port(mut self, port: i32) -> Self {
        self.ssl_port = Some(port);
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Sets the service type.
    pub fn service_type(mut self, service_type: ServiceType) -> Self {
        self.service_type = service_type;
        self
    }

    /// Sets the URI spec.
    pub fn uri_spec(mut self, spec: UriSpec) -> Self {
        self.uri_spec = Some(spec);
        self
    }

    /// The URI from this instance's [`UriSpec`] (see [`UriSpec::build`]), or `None`
    /// without one.
    pub fn uri(&self) -> Option<String> {
        self.uri_spec.as_ref().map(|spec| spec.build(self, &[]))
    }

    /// `false` only when Curator's `enabled` flag is present and false.
    pub fn is_enabled(&self) -> bool {
        self.enabled != Some(false)
    }

    /// The node data: Curator's JSON.
    pub fn to_json(&self) -> String {
        // Plain strings, numbers and JSON values: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an instance node's data.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] when `data` is not such JSON.
    pub fn from_json(data: &[u8]) -> Result<ServiceInstance> {
        let invalid =
            |e: serde_json::Error| Error::InvalidValue(format!("service instance JSON: {e}"));
        let value: serde_json::Value = serde_json::from_slice(data).map_err(invalid)?;
        if !value.is_object() {
            return Err(Error::InvalidValue(
                "service instance JSON: not an object".to_owned(),
            ));
        }
        serde_json::from_value(value).map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by Curator 5.4 (`ServiceDiscovery<String>.registerService`, default
    /// serializer) for a `ServiceInstance.builder().name("svc").id("i1")
    /// .address("10.0.0.1").port(8080).payload("hello")
    /// .uriSpec(new UriSpec("{scheme}://{address}:{port}"))`.
    const CURATOR: &str = r#"{"name":"svc","id":"i1","address":"10.0.0.1","port":8080,"sslPort":null,"payload":"hello","registrationTimeUTC":1796216812658,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true}]}}"#;

    #[test]
    fn reads_and_writes_curators_bytes() {
        let instance = ServiceInstance::from_json(CURATOR.as_bytes()).unwrap();
        assert_eq!(instance.name, "svc");
        assert_eq!(instance.port, Some(8080));
        assert_eq!(instance.ssl_port, None);
        assert_eq!(instance.registration_time_utc, 1_796_216_812_658);
        assert_eq!(instance.uri().unwrap(), "http://10.0.0.1:8080");
        assert_eq!(instance.to_json(), CURATOR);
        let mut ours = ServiceInstance::new("svc")
            .id("i1")
            .address("10.0.0.1")
            .port(8080)
            .payload(serde_json::json!("hello"))
            .uri_spec(UriSpec::parse("{scheme}://{address}:{port}").unwrap());
        ours.registration_time_utc = 1_796_216_812_658;
        assert_eq!(ours.to_json(), CURATOR);
    }

    #[test]
    fn tolerant_reader_and_clear_errors() {
        let extra = r#"{"name":"a","id":"b","enabled":false,"future":1,"serviceType":"PERMANENT"}"#;
        let instance = ServiceInstance::from_json(extra.as_bytes()).unwrap();
        assert!(!instance.is_enabled());
        assert_eq!(instance.service_type, ServiceType::Permanent);
        assert!(instance.to_json().contains(r#""enabled":false"#));
        for bad in [
            "",
            "{",
            "[]",
            r#"{"serviceType":"WEIRD"}"#,
            r#"{"port":"x"}"#,
        ] {
            assert!(
                matches!(
                    ServiceInstance::from_json(bad.as_bytes()),
                    Err(Error::InvalidValue(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn uri_specs_parse_as_curators() {
        let spec = UriSpec::parse("{scheme}://{ address }:{port}{[}x{]}").unwrap();
        assert_eq!(spec.parts.len(), 8);
        assert_eq!(spec.parts[2].value, "address");
        let instance = ServiceInstance::new("n").address("h").port(1).ssl_port(2);
        assert_eq!(spec.build(&instance, &[]), "https://h:1{x}");
        assert_eq!(spec.build(&instance, &[("scheme", "ws")]), "ws://h:1{x}");
        for bad in ["{a{b}}", "a}", "{open"] {
            assert!(UriSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
