//! Generates the surge.v1 services only: every message is surge-proto's (`extern_path`), so the
//! two crates share one set of types. protoc is the one `protoc-bin-vendored` ships.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure()
        .extern_path(".surge.v1", "::surge_proto::v1")
        .compile_protos(
            &["../proto/proto/surge/v1/surge.proto"],
            &["../proto/proto"],
        )?;
    println!("cargo:rerun-if-changed=../proto/proto");
    Ok(())
}
