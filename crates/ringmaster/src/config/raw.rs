//! The file's tables as read, before conversion: one `Raw*` struct per table,
//! every key optional and kept with its span, so that each key can be read and
//! judged alone (`collect`) and every error can name its place.
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::parse::Source;
use super::ConfigError;

/// A raw table: serde refuses unknown keys; every field is optional so that one
/// key can be deserialized alone; parts merge field by field.
pub(super) trait RawTable: DeserializeOwned + Default {
    /// The keys it knows, in the order of the struct.
    const KEYS: &'static [&'static str];
    /// Takes every field `other` has.
    fn merge(&mut self, other: Self);
    /// The message for a key it does not know.
    fn unknown_key(ctx: &str, key: &str) -> String {
        format!(
            "{ctx}: unknown key `{key}`; expected one of {}",
            Self::KEYS.join(", ")
        )
    }
    /// Notes a key that had errors (reported already; its field stays empty).
    fn bad_key(&mut self, key: &str);
    /// For a key whose value is a nested table that failed as a whole: collects
    /// that table key by key (every error, the good keys kept). False when `key`
    /// is not a nested table.
    fn nested(
        &mut self,
        _key: &str,
        _value: &Spanned<DeValue<'_>>,
        _ctx: &str,
        _src: &Source<'_>,
        _errors: &mut Vec<ConfigError>,
    ) -> bool {
        false
    }
}

macro_rules! raw_table {
    ($(#[doc = $doc:literal])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $name {
            $(pub(super) $field: Option<$ty>,)*
            /// The keys that had errors (reported already; their fields are empty).
            #[serde(skip)]
            pub(super) bad_keys: Vec<String>,
        }
        impl $name {
            const FIELD_NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
            fn merge_fields(&mut self, other: Self) {
                $(if other.$field.is_some() { self.$field = other.$field; })*
            }
        }
    };
}

raw_table!(
    /// `[settings]`.
    RawSettings {
        state_dir: Spanned<String>,
        shutdown_timeout: Spanned<String>,
        health_interval: Spanned<String>,
        metrics: Spanned<String>,
        log_max_bytes: Spanned<i64>,
        start_window: Spanned<String>,
    }
);

raw_table!(
    /// `[services.NAME]`.
    RawService {
        command: Spanned<String>,
        workdir: Spanned<String>,
        env: BTreeMap<Spanned<String>, Spanned<EnvValue>>,
        env_file: Spanned<String>,
        port: Spanned<PortValue>,
        allow: Vec<Spanned<String>>,
        depends_on: Spanned<RawDepends>,
        health: Spanned<RawHealth>,
        restart: Spanned<RawRestart>,
        stop: Spanned<RawStop>,
        ready_timeout: Spanned<String>,
        pid_file: Spanned<String>,
        install: Spanned<RawInstall>,
        follow_daemon: Spanned<bool>,
        start_window: Spanned<String>,
        replicas: Spanned<i64>,
        min_ready: Spanned<i64>,
        replica_ports: Spanned<String>,
    }
);

raw_table!(
    /// `health = { ... }`.
    RawHealth {
        http: Spanned<String>,
        tcp: Spanned<PortValue>,
        exec: Spanned<String>,
        log: Spanned<String>,
        notify: Spanned<bool>,
        interval: Spanned<String>,
        timeout: Spanned<String>,
        failures: Spanned<i64>,
        start_interval: Spanned<String>,
    }
);

raw_table!(
    /// `restart = { ... }`.
    RawRestart {
        policy: Spanned<String>,
        max_attempts: Spanned<i64>,
        backoff: Spanned<String>,
    }
);

raw_table!(
    /// `stop = { ... }`.
    RawStop {
        signal: Spanned<String>,
        timeout: Spanned<String>,
        command: Spanned<String>,
    }
);

raw_table!(
    /// `install = { ... }`.
    RawInstall {
        command: Spanned<String>,
        unless_exists: Spanned<String>,
    }
);

macro_rules! plain_raw_table {
    ($($name:ident),*) => {$(
        impl RawTable for $name {
            const KEYS: &'static [&'static str] = $name::FIELD_NAMES;
            fn merge(&mut self, other: Self) {
                self.merge_fields(other)
            }
            fn bad_key(&mut self, key: &str) {
                self.bad_keys.push(key.to_string());
            }
        }
    )*};
}
plain_raw_table!(RawSettings, RawRestart, RawStop, RawInstall);

impl RawTable for RawService {
    const KEYS: &'static [&'static str] = RawService::FIELD_NAMES;
    fn merge(&mut self, other: Self) {
        self.merge_fields(other)
    }
    fn bad_key(&mut self, key: &str) {
        self.bad_keys.push(key.to_string());
    }
    fn nested(
        &mut self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        ctx: &str,
        src: &Source<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> bool {
        let ctx = format!("{ctx} {key}");
        let span = value.span();
        match key {
            "health" => {
                self.health =
                    collect::<RawHealth>(value, &ctx, src, errors).map(|v| Spanned::new(span, v))
            }
            "restart" => {
                self.restart =
                    collect::<RawRestart>(value, &ctx, src, errors).map(|v| Spanned::new(span, v))
            }
            "stop" => {
                self.stop =
                    collect::<RawStop>(value, &ctx, src, errors).map(|v| Spanned::new(span, v))
            }
            "install" => {
                self.install =
                    collect::<RawInstall>(value, &ctx, src, errors).map(|v| Spanned::new(span, v))
            }
            _ => return false,
        }
        true
    }
}

impl RawTable for RawHealth {
    const KEYS: &'static [&'static str] = RawHealth::FIELD_NAMES;
    fn merge(&mut self, other: Self) {
        self.merge_fields(other)
    }
    fn bad_key(&mut self, key: &str) {
        self.bad_keys.push(key.to_string());
    }
    fn unknown_key(ctx: &str, key: &str) -> String {
        format!("{ctx}: unknown probe kind `{key}`; expected one of http, tcp, exec, log (besides interval, timeout, failures)")
    }
}

/// `depends_on`: a list of names (condition `ready`) or a table `name = "condition"`.
#[derive(Debug)]
pub(super) enum RawDepends {
    List(Vec<Spanned<String>>),
    Table(Vec<(Spanned<String>, Spanned<String>)>),
}

impl<'de> Deserialize<'de> for RawDepends {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DependsVisitor;
        impl<'de> Visitor<'de> for DependsVisitor {
            type Value = RawDepends;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of service names or a table of name = \"ready\" | \"started\" | \"completed\"")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawDepends, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<Spanned<String>>()? {
                    names.push(name);
                }
                Ok(RawDepends::List(names))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDepends, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<Spanned<String>, Spanned<String>>()? {
                    entries.push(entry);
                }
                Ok(RawDepends::Table(entries))
            }
        }
        deserializer.deserialize_any(DependsVisitor)
    }
}

/// An `env` value: a string, or a number or boolean taken as written (`PORT = 8000`).
#[derive(Debug)]
pub(super) struct EnvValue(pub(super) String);

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;
        impl Visitor<'_> for EnvVisitor {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
        }
        deserializer.deserialize_any(EnvVisitor)
    }
}

/// A port as written: an integer, or a string expanded like `command` and then
/// parsed (`port = "${API_PORT:-8000}"`).
#[derive(Debug)]
pub(super) enum PortValue {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = PortValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string (a port such as 8000 or \"${API_PORT:-8000}\")")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PortValue, E> {
                Ok(PortValue::Number(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PortValue, E> {
                // Beyond i64 is beyond any port: reported as out of range.
                Ok(PortValue::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PortValue, E> {
                Ok(PortValue::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// Deserializes a table key by key into `T`, pushing an error for each bad key
/// (unknown key, wrong type) and keeping the good ones. `None` when `value` is not a table.
pub(super) fn collect<T: RawTable>(
    value: &Spanned<DeValue<'_>>,
    ctx: &str,
    src: &Source<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let DeValue::Table(table) = value.get_ref() else {
        errors.push(src.error(
            value.span(),
            format!(
                "{ctx}: expected a table, found {}",
                kind_of(value.get_ref())
            ),
        ));
        return None;
    };
    let mut out = T::default();
    for (key, item) in table.iter() {
        let mut one = DeTable::new();
        one.insert(key.clone(), item.clone());
        let de = ValueDeserializer::from(Spanned::new(value.span(), DeValue::Table(one)));
        match T::deserialize(de) {
            Ok(part) => out.merge(part),
            Err(e) => {
                let name: &str = key.get_ref();
                out.bad_key(name);
                if !T::KEYS.contains(&name) {
                    errors.push(src.error(key.span(), T::unknown_key(ctx, name)));
                    continue;
                }
                let before = errors.len();
                if out.nested(name, item, ctx, src, errors) && errors.len() > before {
                    continue;
                }
                errors.truncate(before);
                let message = e.message().replace("expected i64", "expected an integer");
                let span = e.span().unwrap_or_else(|| item.span());
                errors.push(src.error(span, format!("{ctx}: `{name}`: {message}")));
            }
        }
    }
    Some(out)
}

pub(super) fn kind_of(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
