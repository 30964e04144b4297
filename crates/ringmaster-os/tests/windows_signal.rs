//! Windows: stop signal names parse and print the same as on Unix (configuration
//! files are shared across platforms), and serialize the same way. Run on Linux
//! under Wine with `.ci/wine/test.sh`.
#![cfg(windows)]

use ringmaster_os::Signal;

const ALL: [Signal; 8] = [
    Signal::Term,
    Signal::Int,
    Signal::Hup,
    Signal::Quit,
    Signal::Kill,
    Signal::Usr1,
    Signal::Usr2,
    Signal::Break,
];

#[test]
fn every_name_parses_with_or_without_sig_in_any_case() {
    let names = [
        "TERM", "INT", "HUP", "QUIT", "KILL", "USR1", "USR2", "BREAK",
    ];
    for (name, signal) in names.iter().zip(ALL) {
        for spelling in [
            name.to_string(),
            format!("SIG{name}"),
            name.to_ascii_lowercase(),
            format!("sig{}", name.to_ascii_lowercase()),
            format!("  {name}\t"),
        ] {
            assert_eq!(spelling.parse::<Signal>(), Ok(signal), "{spelling:?}");
        }
        assert_eq!(signal.to_string(), *name);
    }
}

#[test]
fn unknown_names_are_refused_with_the_list_of_known_ones() {
    for bad in ["", "SIG", "SIGCTRL_BREAK", "CTRL_C", "9", "TERMINATE"] {
        let err = bad.parse::<Signal>().expect_err(bad);
        assert!(err.contains(&format!("{bad:?}")), "{err}");
        assert!(
            err.contains("TERM, INT, HUP, QUIT, KILL, USR1, USR2, BREAK"),
            "{err}"
        );
    }
}

#[test]
fn signals_serialize_by_variant_name() {
    for signal in ALL {
        let json = serde_json::to_string(&signal).expect("a signal serializes");
        assert_eq!(json, format!("\"{signal:?}\""));
        let back: Signal = serde_json::from_str(&json).expect("a signal deserializes");
        assert_eq!(back, signal);
    }
}
