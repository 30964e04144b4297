//! Exit codes and the error a command ends with. Only the CLI maps errors to exit
//! codes: 0 success, 1 the operation failed, 2 usage or configuration, 3 refused.
use std::path::Path;

use ringmaster::config::ConfigErrors;
use ringmaster::Config;

/// Success.
pub const OK: u8 = 0;
/// The operation failed (startup failed, something left, no instance runs).
pub const FAILED: u8 = 1;
/// Usage or configuration error.
pub const USAGE: u8 = 2;
/// kill-port refused a holder; nothing was touched.
pub const REFUSED: u8 = 3;

/// How a command ends when it does not succeed: an exit code and what to print on
/// stderr (may be empty when the command printed it already).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit 1 with `message`.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: FAILED,
            message: message.into(),
        }
    }
    /// Exit 2 with `message`.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }
    /// Exit `code` with `message`.
    pub fn code(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// What every command returns: `Ok(code)` (usually 0) or a failure.
pub type CmdResult = Result<u8, Failure>;

/// Loads and validates a configuration; configuration errors exit 2, one per line
/// with `file:line:col`.
pub fn load_config(file: &Path) -> Result<Config, Failure> {
    let config = Config::load(file).map_err(config_failure)?;
    tracing::info!(
        file = %file.display(),
        services = config.services.len(),
        state_dir = %config.settings.state_dir.display(),
        "configuration loaded"
    );
    Ok(config)
}

/// Exit 2 listing every configuration error.
pub fn config_failure(errors: ConfigErrors) -> Failure {
    let n = errors.0.len();
    Failure::usage(format!(
        "{errors}\n{n} configuration error{}",
        if n == 1 { "" } else { "s" }
    ))
}
