//! Fuzz target: protocol detection (`weft_proxy::detect::classify`) on arbitrary first bytes.
//! The property is checked by `weft_proxy::fuzz_entry::detect`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_proxy::fuzz_entry::detect(data));
