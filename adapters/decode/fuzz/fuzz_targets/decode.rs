//! Arbitrary bytes through the whole pipeline: decoder, the three renderers, `info`.
//! Beyond "no panic, no hang", checks that no output line carries a raw control character
//! (nor, with `issue10-text`, a bidi control, a Unicode space or an invisible character).
#![no_main]

use flightrec_decode::info::{self, InfoCollector};
use flightrec_decode::{Decoder, Format, Options, Renderer};
use flightrec_decode_fuzz::check::check_text as check;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Text, Format::Json, Format::Forensic] {
        let mut decoder = Decoder::new(data);
        let mut renderer = Renderer::new(Options {
            format,
            ..Options::default()
        });
        let mut out = Vec::new();
        let mut items = 0usize;
        while let Some(item) = decoder.next().expect("reading a slice cannot fail") {
            items += 1;
            assert!(items <= 4 * data.len() + 8, "more items than bytes");
            renderer
                .render(&item, &mut out)
                .expect("writing to a Vec cannot fail");
        }
        renderer
            .finish(&mut out)
            .expect("writing to a Vec cannot fail");
        assert_eq!(decoder.stats().bytes, data.len() as u64);
        check(&out);
    }
    let mut decoder = Decoder::new(data);
    let mut collector = InfoCollector::new();
    let mut out = Vec::new();
    while let Some(item) = decoder.next().expect("reading a slice cannot fail") {
        if let Some(d) = collector.feed(&item) {
            info::write_text(&mut out, &d).expect("vec");
            info::write_json(&mut out, &d, None).expect("vec");
        }
    }
    if let Some(d) = collector.finish() {
        info::write_text(&mut out, &d).expect("vec");
    }
    check(&out);
});
