use super::*;
use crate::error::{Classify as _, FailureKind};

#[test]
fn defaults_load() {
    let s = Settings::load(Source::Toml(String::new())).unwrap();
    assert_eq!(s.config(), &Config::default());
}

#[test]
fn bad_value_names_key() {
    let err = Settings::load(Source::Toml("[resolve]\nmode = \"sideways\"\n".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("resolve.mode"), "{err}");
}

#[test]
fn unknown_key_is_rejected() {
    let err = Settings::load(Source::Toml("[resolve]\nstager_ms = 3\n".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("stager_ms"), "{err}");
}

#[test]
fn errors_name_the_key_as_written_once_without_internal_prefixes() {
    let err = Settings::load(Source::Toml("[resolve]\nordr = 3\n".into()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "invalid config: `resolve.ordr`: unknown key `ordr`; expected one of `order`, `mode`"
        ),
        "{err}"
    );
    assert!(!err.contains("default."), "{err}");
    assert!(!err.contains("``"), "{err}");
    assert_eq!(err.matches("resolve.ordr").count(), 1, "{err}");
    let err = Settings::load(Source::Toml("[discover]\nmode = \"fast\"\n".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`discover.mode`: unknown value `fast`; expected one of `sequential`, `staggered`, `all`"), "{err}");
}

#[test]
fn missing_explicit_file_is_an_error() {
    let err = Settings::load(Source::File("/nonexistent/localpair.toml".into())).unwrap_err();
    assert!(matches!(err, Error::ConfigFileMissing { .. }));
}

#[test]
fn file_error_names_the_file() {
    let path = std::env::temp_dir().join(format!("lp-cfg-{}.toml", std::process::id()));
    std::fs::write(&path, "[discover]\nstagger_ms = \"soon\"\n").unwrap();
    let err = Settings::load(Source::File(path.clone()))
        .unwrap_err()
        .to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(err.contains("discover.stagger_ms"), "{err}");
    // By file name: figment shows the path relative to the working directory, which
    // figment::Jail in another test may change at any moment.
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(err.contains(name.as_ref()), "{err}");
}

#[cfg(unix)]
#[test]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail API fixes the error type"
)]
fn a_config_file_others_can_write_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::temp_dir().join(format!("lp-cfg-w-{}.toml", std::process::id()));
    std::fs::write(&path, "[discover]\nstagger_ms = 20\n").unwrap();
    for mode in [0o664, 0o646, 0o666] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = Settings::load(Source::File(path.clone())).unwrap_err();
        assert_eq!(err.failure_kind(), FailureKind::Config);
        let err = err.to_string();
        assert!(
            err.contains(&format!("chmod go-w {}", path.display())),
            "{err}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let settings = Settings::load(Source::File(path.clone())).unwrap();
    assert_eq!(settings.config().discover.stagger_ms, 20);

    // Owned by another user: only root can make such a file here, so only root checks it.
    if sources::effective_uid() == 0 {
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let err = Settings::load(Source::File(path.clone()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("owned by another user (uid 65534"), "{err}");
    }
    std::fs::remove_file(&path).unwrap();

    // The same rule for ./localpair.toml.
    figment::Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_FILE, "[discover]\nstagger_ms = 21\n")?;
        let s = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
        assert_eq!(s.config().discover.stagger_ms, 21);
        std::fs::set_permissions(DEFAULT_FILE, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| e.to_string())?;
        let err = Settings::load(Source::Discover).unwrap_err().to_string();
        assert!(err.contains("chmod go-w localpair.toml"), "{err}");
        Ok(())
    });
}

crate::register_section!("test-section");

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct TestSection {
    value: u64,
}

#[test]
fn a_registered_section_is_read_by_its_owner_and_an_unknown_one_is_refused() {
    let s = Settings::load(Source::Toml("[test-section]\nvalue = 3\n".into())).unwrap();
    assert_eq!(s.section::<TestSection>("test-section").unwrap().value, 3);
    let err = s.section::<Fake>("test-section").unwrap_err().to_string();
    assert!(err.contains("test-section.value"), "{err}");
    let err = Settings::load(Source::Toml("[pairng]\nport = 3\n".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown config section `pairng`"), "{err}");
    assert!(err.contains("test-section"), "{err}");
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct Fake {
    targets: Vec<String>,
    retries: u32,
}

#[test]
fn strategy_table_extracts_with_full_path_in_errors() {
    let s = Settings::load(Source::Toml(
        "[strategies.fake-one]\ntargets = [\"a\"]\n[strategies.fake-two]\nretries = \"x\"\n".into(),
    ))
    .unwrap();
    let one: Fake = s.strategy_table("fake-one").extract().unwrap();
    assert_eq!(one.targets, ["a"]);
    let missing: Fake = s.strategy_table("absent").extract().unwrap();
    assert_eq!(missing, Fake::default());
    let err = s
        .strategy_table("fake-two")
        .extract::<Fake>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("strategies.fake-two.retries"), "{err}");
    assert_eq!(s.strategy_table_names(), ["fake-one", "fake-two"]);
}

#[test]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail API fixes the error type"
)]
fn environment_overrides_with_double_underscore() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("LOCALPAIR_RESOLVE__STAGGER_MS", "77");
        jail.set_env("LOCALPAIR_STRATEGIES__FAKE_ONE__RETRIES", "3");
        jail.set_env("LOCALPAIR_BIN", "/not/config");
        jail.set_env("LOCALPAIR_TEST_SECTION__VALUE", "1500");
        let s = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
        assert_eq!(s.config().resolve.stagger_ms, 77);
        let section: TestSection = s.section("test-section").map_err(|e| e.to_string())?;
        assert_eq!(section.value, 1500);
        let fake: Fake = s
            .strategy_table("fake-one")
            .extract()
            .map_err(|e| e.to_string())?;
        assert_eq!(fake.retries, 3);
        Ok(())
    });
}

#[test]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail API fixes the error type"
)]
fn the_usual_places_are_searched_in_order_and_the_first_found_is_read() {
    figment::Jail::expect_with(|jail| {
        let xdg = jail.directory().join("xdg");
        jail.set_env("XDG_CONFIG_HOME", xdg.display());
        let places = search_places();
        assert_eq!(places[0], PathBuf::from(DEFAULT_FILE));
        assert_eq!(places[1], xdg.join("localpair/config.toml"));
        assert_eq!(
            places.last(),
            Some(&PathBuf::from("/etc/localpair/config.toml"))
        );

        // Nothing anywhere: defaults, and the places looked in are known.
        let s = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
        assert_eq!(s.file(), None);
        assert_eq!(s.looked_in(), places.as_slice());

        // The platform's config directory.
        jail.create_dir("xdg/localpair")?;
        jail.create_file("xdg/localpair/config.toml", "[discover]\nstagger_ms = 31\n")?;
        let s = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
        assert_eq!(s.config().discover.stagger_ms, 31);
        assert_eq!(s.file(), Some(xdg.join("localpair/config.toml").as_path()));

        // ./localpair.toml comes first, and only one file is read (not merged).
        jail.create_file(DEFAULT_FILE, "[resolve]\nstagger_ms = 32\n")?;
        let s = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
        assert_eq!(s.config().resolve.stagger_ms, 32);
        assert_eq!(
            s.config().discover.stagger_ms,
            250,
            "the XDG file is not read"
        );

        // LOCALPAIR_CONFIG wins over both and must exist.
        jail.create_file("named.toml", "[discover]\nstagger_ms = 33\n")?;
        jail.set_env(CONFIG_VAR, "named.toml");
        let s = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
        assert_eq!(s.config().discover.stagger_ms, 33);
        assert!(s.looked_in().is_empty());
        jail.set_env(CONFIG_VAR, "missing.toml");
        let err = Settings::load(Source::Discover).unwrap_err().to_string();
        assert!(
            err.contains("missing.toml does not exist (named by LOCALPAIR_CONFIG)"),
            "{err}"
        );
        Ok(())
    });
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct TypedSection {
    limit: u64,
    label: String,
}

crate::register_section!("typed-test-section", TypedSection);

#[test]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail API fixes the error type"
)]
fn effective_settings_say_where_each_value_came_from() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "lp.toml",
            "[discover]\nstagger_ms = 40\n[strategies.mdns]\nx = 1\n",
        )?;
        jail.set_env("LOCALPAIR_RESOLVE__MODE", "all");
        let file = jail.directory().join("lp.toml");
        let s = Settings::load(Source::File(file.clone()))
            .and_then(|s| s.with_flag("device.ephemeral", true, "--ephemeral"))
            .map_err(|e| e.to_string())?;
        let all = s.effective().map_err(|e| e.to_string())?;
        let find = |key: &str| {
            all.iter()
                .find(|e| e.key == key)
                .unwrap_or_else(|| panic!("{key} listed: {all:#?}"))
        };
        let default = find("resolve.deadline_ms");
        assert_eq!(
            (default.origin, default.source.as_deref()),
            (Origin::Default, None)
        );
        let from_file = find("discover.stagger_ms");
        assert_eq!(from_file.origin, Origin::File);
        assert_eq!(
            from_file.source.as_deref(),
            Some(file.display().to_string().as_str())
        );
        assert_eq!(find("strategies.mdns.x").origin, Origin::File);
        let env = find("resolve.mode");
        assert_eq!(env.origin, Origin::Environment);
        assert_eq!(env.source.as_deref(), Some("LOCALPAIR_RESOLVE__MODE"));
        let flag = find("device.ephemeral");
        assert_eq!(
            (flag.origin, flag.source.as_deref()),
            (Origin::Flag, Some("--ephemeral"))
        );
        // A section registered with its type lists its defaults.
        assert_eq!(find("typed-test-section.limit").origin, Origin::Default);
        assert_eq!(find("typed-test-section.label").origin, Origin::Default);
        // Arrays are one value.
        assert!(
            matches!(
                find("resolve.order").value,
                figment::value::Value::Array(..)
            ),
            "{all:#?}"
        );
        Ok(())
    });
}
