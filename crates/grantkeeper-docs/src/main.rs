//! `grantkeeper-docs OUT`: writes the `grantkeeper` command's man pages (`OUT/man1`, one page
//! per command and subcommand) and its shell completions (`OUT/completions`), from the same
//! clap definition the program parses with. `scripts/package` runs it and installs the result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;

/// The completion scripts, each with the file name its shell loads it by.
const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "grantkeeper"),
    (Shell::Zsh, "_grantkeeper"),
    (Shell::Fish, "grantkeeper.fish"),
];

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("grantkeeper-docs: usage: grantkeeper-docs OUT_DIR");
        return ExitCode::from(2);
    };
    match write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grantkeeper-docs: cannot write into {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes the man pages and completion scripts under `out`.
fn write_all(out: &Path) -> std::io::Result<()> {
    let man = out.join("man1");
    std::fs::create_dir_all(&man)?;
    let cmd = grantkeeper_cli::command();
    clap_mangen::generate_to(cmd.clone(), &man)?;
    // `grantkeeper-full` runs the same commands: its page points at `grantkeeper`'s.
    std::fs::write(man.join("grantkeeper-full.1"), ".so man1/grantkeeper.1\n")?;

    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)?;
    for (shell, name) in COMPLETIONS {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "grantkeeper", &mut script);
        std::fs::write(completions.join(name), script)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command and subcommand gets a page (`grantkeeper-tenant-add.1`, …).
    fn page_names(cmd: &clap::Command, prefix: &str, names: &mut Vec<String>) {
        let name = format!("{prefix}{}", cmd.get_name());
        names.push(format!("{name}.1"));
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            page_names(sub, &format!("{name}-"), names);
        }
    }

    #[test]
    fn writes_a_page_per_command_and_every_completion() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path()).unwrap();

        let mut expected = Vec::new();
        page_names(&grantkeeper_cli::command(), "", &mut expected);
        assert!(expected.contains(&"grantkeeper-provider-delete.1".to_owned()));
        assert!(expected.contains(&"grantkeeper-agent-run.1".to_owned()));
        for name in &expected {
            let page = std::fs::read_to_string(dir.path().join("man1").join(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(page.starts_with(".ie"), "{name} is not roff: {page:.80}");
        }
        let root = std::fs::read_to_string(dir.path().join("man1/grantkeeper.1")).unwrap();
        assert!(
            root.contains(env!("CARGO_PKG_VERSION")),
            "the page names the version"
        );
        assert!(root.contains("maintain"), "the page lists the subcommands");
        let full = std::fs::read_to_string(dir.path().join("man1/grantkeeper-full.1")).unwrap();
        assert_eq!(full, ".so man1/grantkeeper.1\n");

        for (_, name) in COMPLETIONS {
            let script = std::fs::read_to_string(dir.path().join("completions").join(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                script.contains("reconsent"),
                "{name} completes the subcommands"
            );
        }
    }

    /// One version for everything: the crates (`version.workspace = true`), the app (Tauri reads
    /// Cargo's when `tauri.conf.json` names none), the UI package, the AppStream metadata's newest
    /// release and the changelog's newest entry.
    #[test]
    fn one_version_everywhere() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        let version = env!("CARGO_PKG_VERSION");

        let tauri: serde_json::Value =
            serde_json::from_str(&read("src-tauri/tauri.conf.json")).unwrap();
        assert!(
            tauri.get("version").is_none(),
            "tauri.conf.json must take Cargo's version"
        );
        let ui: serde_json::Value = serde_json::from_str(&read("ui/package.json")).unwrap();
        assert_eq!(ui["version"], version, "ui/package.json");

        let metainfo = read("packaging/linux/dev.grantkeeper.desktop.metainfo.xml");
        let newest = metainfo.split("<release version=\"").nth(1).unwrap();
        assert_eq!(
            newest.split('"').next(),
            Some(version),
            "the metainfo's newest release"
        );

        // Changes since the release may wait under "Unreleased"; the newest release is this one.
        let changelog = read("CHANGELOG.md");
        let entry = changelog
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .find(|e| *e != "Unreleased")
            .unwrap();
        assert_eq!(
            entry.split_whitespace().next(),
            Some(version),
            "CHANGELOG.md's newest release"
        );
    }
}
