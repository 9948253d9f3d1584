use std::process::ExitCode;

fn main() -> ExitCode {
    match etcd_bin_vendored::etcd_bin_path() {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("etcd-bin: {err}");
            ExitCode::FAILURE
        }
    }
}
