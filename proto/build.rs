//! Generates the surge.v1 messages (prost, no services: those are surge-grpc's) with the protoc
//! that `protoc-bin-vendored` ships, so no system protoc is needed, and writes the file
//! descriptor set that server reflection serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    prost_build::Config::new()
        .file_descriptor_set_path(out_dir.join("surge_descriptor.bin"))
        .compile_protos(&["proto/surge/v1/surge.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
