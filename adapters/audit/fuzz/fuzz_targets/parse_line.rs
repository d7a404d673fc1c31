//! Audit-line parser: never panics, and accepts only lines the renderer writes
//! (a parsed line renders back byte for byte, and parses again to the same record).
#![no_main]

use flightrec_audit::{EjabberdFormat, LineFormat, OxFormat, UtcOffset};
use libfuzzer_sys::fuzz_target;

fn formats() -> [LineFormat; 6] {
    let tz = |s: &str| s.parse::<UtcOffset>().unwrap_or_default();
    [
        LineFormat::Ejabberd(EjabberdFormat::default()),
        LineFormat::Ejabberd(EjabberdFormat {
            time_zone: tz("+05:30"),
        }),
        LineFormat::OpenXchange(OxFormat::default()),
        LineFormat::OpenXchange(OxFormat {
            delimiter: ';',
            attribute_names: false,
            date_pattern: "%s".into(),
            time_zone: UtcOffset::UTC,
        }),
        LineFormat::OpenXchange(OxFormat {
            delimiter: '\t',
            attribute_names: true,
            date_pattern: "%d/%b/%Y:%H:%M:%S %z".into(),
            time_zone: tz("-03:00"),
        }),
        LineFormat::OpenXchange(OxFormat {
            delimiter: ' ',
            attribute_names: false,
            date_pattern: "%c".into(),
            time_zone: UtcOffset::UTC,
        }),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let formats = formats();
    let format = &formats[usize::from(selector) % formats.len()];
    for line in text.split('\n') {
        if let Ok(record) = format.parse(line) {
            let mut again = String::new();
            format
                .render(
                    i128::from(record.unix_secs) * 1_000_000_000,
                    "",
                    &record.event.as_decoded(),
                    &mut again,
                )
                .expect("a parsed record renders");
            assert_eq!(again, line, "parsed line does not render back");
            assert_eq!(format.parse(&again).as_ref(), Ok(&record));
        }
    }
    // The viewer's argument parsers see the same bytes.
    let _ = flightrec_audit::viewer::parse_time_arg(&text);
    let _ = text.parse::<UtcOffset>();
});
