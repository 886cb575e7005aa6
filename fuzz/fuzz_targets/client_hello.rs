//! Fuzz target: the ClientHello parser (`weft_proxy::tls::client_hello::server_name`).
//! The property is checked by `weft_proxy::fuzz_entry::client_hello`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_proxy::fuzz_entry::client_hello(data));
