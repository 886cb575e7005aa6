# Helpers shared by the scripts in scripts/ (sourced, not run).

# target_dir: cargo's target directory for this workspace (honours
# CARGO_TARGET_DIR and .cargo/config.toml).
target_dir() {
    cargo metadata --format-version 1 --no-deps 2>/dev/null \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}
