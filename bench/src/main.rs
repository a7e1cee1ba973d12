//! The standalone `evserver-bench` binary: the same command as `evserver bench`, no Python.

fn main() {
    std::process::exit(evserver_bench::main(std::env::args_os()));
}
