//! Configs that do not read the shell.
//!
//! Both binaries take every flag from the command line or, failing that,
//! from an environment variable (clap's `env =`). That is right for a
//! process an operator starts, and wrong for a config a test or a tool
//! builds: `JWT_SECRET` exported in a developer's shell would turn tokens
//! on in every test's gateway, `REDIS_HOST` would send an "embedded" test
//! to a real Redis. [`defaults`] gives a config with every default and
//! nothing from the environment, to set fields on from there.

use clap::{CommandFactory, FromArgMatches};

/// The config `binary` gets with no flags and no environment at all.
///
/// # Panics
/// When a default does not parse: a bug in the config's declaration, caught
/// by any test that builds one.
pub fn defaults<C: CommandFactory + FromArgMatches>(binary: &str) -> C {
    match from_flags([binary]) {
        Ok(config) => config,
        Err(error) => panic!("the defaults of {binary}'s config do not parse: {error}"),
    }
}

/// The config `args` give (the program name first), everything else at its
/// default; no environment variable is read.
pub fn from_flags<C, I, T>(args: I) -> Result<C, clap::Error>
where
    C: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let without_env = C::command().mut_args(|arg| arg.env(None::<&str>));
    C::from_arg_matches(&without_env.try_get_matches_from(args)?)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// A flag that falls back on `PATH`, which every process has set.
    #[derive(Debug, Parser)]
    struct Probe {
        #[arg(long, env = "PATH")]
        path: Option<String>,
        #[arg(long, default_value_t = 7)]
        port: u16,
    }

    #[test]
    fn defaults_ignore_the_environment_but_keep_the_defaults() {
        assert!(
            Probe::parse_from(["probe"]).path.is_some(),
            "clap itself reads PATH, so this test can see the difference"
        );
        let probe: Probe = super::defaults("probe");
        assert_eq!(probe.path, None, "defaults() must not read the environment");
        assert_eq!(probe.port, 7);
    }
}
