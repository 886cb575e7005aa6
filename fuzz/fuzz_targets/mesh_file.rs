//! Fuzz target: the mesh-file loader (`weft_controller::mesh_file::parse_changes`).
//! The property is checked by `weft_controller::fuzz_entry::mesh_file`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_controller::fuzz_entry::mesh_file(data));
