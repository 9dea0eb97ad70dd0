//! Config loading (YAML parse, validation with positions, lowering): any text gives a
//! snapshot or a list of positioned errors, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name.len() % 2 == 0).then(|| format!("value-of-{name}"));
    match switchyard::config::load_str(text, "fuzz.yaml", &env) {
        Ok(loaded) => {
            let _ = loaded.snapshot;
        }
        Err(e) => {
            assert!(!e.errors.is_empty(), "refused without a reason");
            let _ = e.to_string();
        }
    }
});
