//! `${VAR}` / `${VAR:-default}` expansion and `env_file` parsing (`KEY=VALUE` lines).
//!
//! Expansion applies to `command`, `env` values, `workdir`, `pid_file`,
//! `install.command`, `stop.command`, the `http`/`exec` health probes, and `port`
//! and the `tcp` probe when written as strings (`port = "${API_PORT:-8000}"`, then
//! read as a number). Where a variable comes from (the lookup is the caller's, in
//! `parse.rs`):
//!
//! - in `command`, `workdir`, `pid_file`, `port`, `install.command`,
//!   `stop.command` and the probes: the
//!   service's `env` table (its values after their own expansion), then its
//!   `env_file`, then the process environment. That is the order in which the
//!   service itself sees them, so `${PORT}` in the command is the `PORT` the
//!   service finds;
//! - in `env` values: the `env_file`, then the process environment. An `env`
//!   value never reads another `env` entry (nor itself), so their order does not
//!   matter and there can be no cycle.
//!
//! `$${` writes a literal `${`; a lone `$` (as in `$HOME` or `$$`) is left for the shell.
//!
//! In a service with `replicas`, `${REPLICA}` (and, when the service has a `port`,
//! `${PORT}`) are not looked up: they expand to a mark ([`REPLICA_MARK`],
//! [`PORT_MARK`]) that [`super::ServiceConfig::replica`] replaces with each
//! member's index and port. The builder, which expands nothing else, turns the
//! same two names into marks ([`mark_replica_vars`]).

/// What `${REPLICA}` expands to in a service with `replicas`, until
/// [`super::ServiceConfig::replica`] puts the member's index in its place.
pub(crate) const REPLICA_MARK: &str = "\u{1}REPLICA\u{1}";

/// What `${PORT}` expands to in a service with `replicas` and a `port`, until
/// [`super::ServiceConfig::replica`] puts the member's own port in its place.
pub(crate) const PORT_MARK: &str = "\u{1}PORT\u{1}";

/// The mark `var` stands for in a service that is `replicated` (and has a port
/// when `with_port`), if any: such names are never looked up.
pub(crate) fn replica_mark(var: &str, replicated: bool, with_port: bool) -> Option<&'static str> {
    match var {
        "REPLICA" if replicated => Some(REPLICA_MARK),
        "PORT" if replicated && with_port => Some(PORT_MARK),
        _ => None,
    }
}

/// For the builder (which expands nothing else): `${REPLICA}` and, `with_port`,
/// `${PORT}` (also with a `:-default`) become their marks; everything else is
/// left as written.
pub(crate) fn mark_replica_vars(text: &str, with_port: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        // `$${` is written as given (the builder has no escapes).
        if i > 0 && rest.as_bytes()[i - 1] == b'$' {
            out.push_str(&rest[..i + 2]);
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let body_and_more = &rest[i + 2..];
        let Some(end) = body_and_more.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let body = &body_and_more[..end];
        let name = body.split_once(":-").map_or(body, |(n, _)| n);
        match replica_mark(name, true, with_port) {
            Some(mark) => out.push_str(mark),
            None => {
                out.push_str("${");
                out.push_str(body);
                out.push('}');
            }
        }
        rest = &body_and_more[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Expands every `${NAME}` and `${NAME:-default}` in `text`.
///
/// `default` is used when `NAME` is unset or empty; `${NAME}` with `NAME` unset is
/// an error (write `${NAME:-}` to accept an empty value).
pub(crate) fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(body_and_more) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = body_and_more.find('}') else {
            return Err(format!(
                "unterminated `${{` in \"{text}\" (expected `${{NAME}}` or `${{NAME:-default}}`)"
            ));
        };
        let body = &body_and_more[..end];
        let (name, default) = match body.find(":-") {
            Some(j) => (&body[..j], Some(&body[j + 2..])),
            None => (body, None),
        };
        if !is_var_name(name) {
            return Err(format!(
                "invalid variable name `{name}` in `${{{body}}}` (expected letters, digits and `_`, not starting with a digit)"
            ));
        }
        let value = lookup(name);
        match (value, default) {
            (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable `{name}` is not set (give a default with `${{{name}:-default}}`)"
                ))
            }
        }
        rest = &body_and_more[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// True for a shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An error in an env file: 1-based line and column, and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct EnvFileError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Parses an env file: `KEY=VALUE` lines, `#` comments and blank lines, an
/// optional `export ` prefix, values optionally in `"double"` (with `\n`, `\t`,
/// `\"`, `\\` escapes) or `'single'` (literal) quotes. In an unquoted value, ` #`
/// starts a comment and surrounding blanks are trimmed. Values are not expanded.
/// Returns the pairs in file order, or every error found.
pub(crate) fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, Vec<EnvFileError>> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut errors = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let indent = raw_line.len() - raw_line.trim_start().len();
        let line = raw_line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (line, offset) = match line.strip_prefix("export ") {
            Some(rest) => {
                let rest_trimmed = rest.trim_start();
                (rest_trimmed, indent + 7 + (rest.len() - rest_trimmed.len()))
            }
            None => (line, indent),
        };
        let col_of = |byte: usize| raw_line[..byte.min(raw_line.len())].chars().count() + 1;
        let Some(eq) = line.find('=') else {
            errors.push(EnvFileError {
                line: line_no,
                col: col_of(offset),
                message: format!("expected KEY=VALUE, found \"{}\"", line.trim_end()),
            });
            continue;
        };
        let key = line[..eq].trim_end();
        if !is_var_name(key) {
            errors.push(EnvFileError {
                line: line_no,
                col: col_of(offset),
                message: format!(
                    "invalid variable name `{key}` (expected letters, digits and `_`, not starting with a digit)"
                ),
            });
            continue;
        }
        let after_eq = &line[eq + 1..];
        let value_str = after_eq.trim_start();
        let value_offset = offset + eq + 1 + (after_eq.len() - value_str.len());
        let value = match value_str.chars().next() {
            Some(q @ ('"' | '\'')) => match unquote(value_str, q) {
                Ok(v) => v,
                Err(message) => {
                    errors.push(EnvFileError {
                        line: line_no,
                        col: col_of(value_offset),
                        message,
                    });
                    continue;
                }
            },
            _ => {
                let mut v = value_str;
                if let Some(hash) = v.find(" #").or_else(|| v.find("\t#")) {
                    v = &v[..hash];
                }
                v.trim_end().to_string()
            }
        };
        pairs.retain(|(k, _)| k != key);
        pairs.push((key.to_string(), value));
    }
    if errors.is_empty() {
        Ok(pairs)
    } else {
        Err(errors)
    }
}

/// The content of a quoted value starting with `quote`; after the closing quote
/// only blanks or a `#` comment may follow.
fn unquote(s: &str, quote: char) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            let tail = s[1 + i + 1..].trim();
            if !tail.is_empty() && !tail.starts_with('#') {
                return Err(format!("unexpected \"{tail}\" after the closing quote"));
            }
            return Ok(out);
        }
        if c == '\\' && quote == '"' {
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, other)) => out.push(other),
                None => break,
            }
            continue;
        }
        out.push(c);
    }
    Err(format!("unterminated quote {quote}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("127.0.0.1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        let x = |s: &str| expand(s, &env);
        assert_eq!(x("serve --host ${HOST}").unwrap(), "serve --host 127.0.0.1");
        assert_eq!(x("${PORT:-8000}").unwrap(), "8000");
        assert_eq!(x("${HOST:-x}:${PORT:-1}").unwrap(), "127.0.0.1:1");
        assert_eq!(x("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(x("[${EMPTY}]").unwrap(), "[]");
        assert_eq!(x("${MISSING:-}").unwrap(), "");
        assert_eq!(x("${MISSING:-a b:-c}").unwrap(), "a b:-c");
    }

    #[test]
    fn leaves_shell_dollars_alone() {
        let x = |s: &str| expand(s, &env);
        assert_eq!(x("echo $HOME $$ $").unwrap(), "echo $HOME $$ $");
        assert_eq!(x("echo $${HOME}").unwrap(), "echo ${HOME}");
        assert_eq!(x("no vars").unwrap(), "no vars");
    }

    #[test]
    fn expansion_errors() {
        let e = expand("run ${PORT", &env).unwrap_err();
        assert!(e.contains("unterminated"), "{e}");
        let e = expand("run ${1X}", &env).unwrap_err();
        assert!(e.contains("invalid variable name `1X`"), "{e}");
        let e = expand("run ${NOPE}", &env).unwrap_err();
        assert!(e.contains("`NOPE` is not set"), "{e}");
    }

    #[test]
    fn builder_marks_only_replica_and_port() {
        assert_eq!(
            mark_replica_vars(
                "run --port ${PORT} --id ${REPLICA:-0} ${HOME} $${PORT} ${X",
                true
            ),
            format!("run --port {PORT_MARK} --id {REPLICA_MARK} ${{HOME}} $${{PORT}} ${{X")
        );
        assert_eq!(
            mark_replica_vars("${PORT}-${REPLICA}", false),
            format!("${{PORT}}-{REPLICA_MARK}")
        );
    }

    #[test]
    fn env_file_lines() {
        let text = "# comment\n\nA=1\nexport B = two words \nC=\"quoted # not a comment\\n\" # comment\nD='single $x'\nE=value # trailing comment\nA=again\nF=\n";
        let pairs = parse_env_file(text).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("B".into(), "two words".into()),
                ("C".into(), "quoted # not a comment\n".into()),
                ("D".into(), "single $x".into()),
                ("E".into(), "value".into()),
                ("A".into(), "again".into()),
                ("F".into(), String::new()),
            ]
        );
    }

    #[test]
    fn env_file_errors_have_positions() {
        let text = "OK=1\nno equals here\n1BAD=2\n  X=\"open\n";
        let errors = parse_env_file(text).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!((errors[0].line, errors[0].col), (2, 1));
        assert!(errors[0].message.contains("expected KEY=VALUE"));
        assert_eq!((errors[1].line, errors[1].col), (3, 1));
        assert!(errors[1].message.contains("invalid variable name `1BAD`"));
        assert_eq!((errors[2].line, errors[2].col), (4, 5));
        assert!(errors[2].message.contains("unterminated quote"));
    }
}
