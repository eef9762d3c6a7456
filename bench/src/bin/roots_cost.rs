//! `roomcast-roots-cost`: what making a TLS client's trusted roots ready costs at a cold
//! start, one way per run, for `scripts/bench-roots` to count under callgrind:
//!
//! - `bundle`: the one file `SSL_CERT_FILE` names, read, PEM-decoded and parsed into a
//!   rustls root store — what the AWS SDK's HTTPS client does when the first SDK client of
//!   a process is built (rustls-native-certs, then `add_parsable_certificates`);
//! - `webpki`: Mozilla's roots as `webpki-roots` compiles them in, already trust anchors,
//!   put in a root store — what kafka-fanout's notifier does;
//! - `none`: neither, the program's own start, to subtract.

use clap::{Parser, ValueEnum};

#[derive(ValueEnum, Debug, Clone, Copy)]
enum Source {
    Bundle,
    Webpki,
    None,
}

#[derive(Parser, Debug)]
#[command(
    name = "roomcast-roots-cost",
    about = "Makes a TLS root store ready one way, for callgrind"
)]
struct Options {
    #[arg(long, value_enum)]
    source: Source,
}

fn main() {
    let options = Options::parse();
    let mut roots = rustls::RootCertStore::empty();
    match options.source {
        Source::Bundle => {
            let found = rustls_native_certs::load_native_certs();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            println!(
                "bundle: {added} roots ({ignored} unparsable, {} errors)",
                found.errors.len()
            );
        }
        Source::Webpki => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let bytes: usize = webpki_roots::TLS_SERVER_ROOTS
                .iter()
                .map(|anchor| {
                    anchor.subject.len()
                        + anchor.subject_public_key_info.len()
                        + anchor.name_constraints.as_ref().map_or(0, |c| c.len())
                })
                .sum();
            println!("webpki: {} roots ({bytes} bytes of anchors compiled in)", roots.len());
        }
        Source::None => println!("none: {} roots", roots.len()),
    }
}
