//! Fuzz target: the transport header codec (`weft_proxy::tls::transport_header`): decode, and re-encode what decodes.
//! The property is checked by `weft_proxy::fuzz_entry::transport_header`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_proxy::fuzz_entry::transport_header(data));
