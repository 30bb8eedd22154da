//! The workspace's layers point one way: the framework imports no application and no strategy,
//! strategies import only the framework, applications never import each other's internals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

/// `(package, [normal dependencies inside the workspace])`, from `cargo metadata`.
fn workspace_dependencies() -> Vec<(String, Vec<String>)> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|n| n.starts_with("localpair-"))
                .map(str::to_owned)
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn dependencies_point_down_only() {
    let all = workspace_dependencies();
    let deps = |name: &str| -> &Vec<String> {
        &all.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is a workspace member"))
            .1
    };
    assert!(
        deps("localpair-core").is_empty(),
        "core imports {:?}",
        deps("localpair-core")
    );
    assert_eq!(deps("localpair-pairing"), &["localpair-core"]);
    assert_eq!(deps("localpair-diagnostics"), &["localpair-core"]);
    let strategies: Vec<&(String, Vec<String>)> = all
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "localpair-core"
                    | "localpair-pairing"
                    | "localpair-diagnostics"
                    | "localpair-cli"
                    | "localpair-lab"
            ) && !n.starts_with("localpair-example")
        })
        .collect();
    assert!(strategies.len() >= 7, "{strategies:?}");
    for (name, deps) in strategies {
        assert_eq!(
            deps,
            &["localpair-core"],
            "{name} may depend on the framework only"
        );
    }
}
