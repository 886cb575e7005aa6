//! Fuzz target: the proxy's configuration parser (`weft_proxy::config::Config::from_lookup`)
//! on settings of its real variables.
//! The property is checked by `weft_proxy::fuzz_entry::config`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_proxy::fuzz_entry::config(data));
