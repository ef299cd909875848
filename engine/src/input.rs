//! Reading the CSV input files, with errors that name the file, the line and the field.
//!
//! Every domain reads its inputs through [`Table`]: the whole file is read and checked to be UTF-8
//! first (so a bad byte is reported with its line, not as a garbled field later), the header row
//! names the columns, and [`Row`] accessors turn each field problem into an [`InputError`] carrying
//! `file:line: field: problem`. Readers validate everything before anything is run or logged.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Longest identifier accepted (ids end up in log entries and output files).
pub const MAX_ID_BYTES: usize = 256;

/// Largest input file read (a guard against a wrong path pointing at a disk image).
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// One problem in one input file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InputError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line, when the problem is on a line.
    pub line: Option<u64>,
    /// The column (or other field) at fault, when there is one.
    pub field: Option<String>,
    pub problem: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl InputError {
    /// A problem with the file as a whole (missing, unreadable, empty).
    pub fn file(file: impl Into<String>, problem: impl Into<String>) -> Self {
        InputError {
            file: file.into(),
            line: None,
            field: None,
            problem: problem.into(),
        }
    }

    /// A problem at a line and field.
    pub fn at(
        file: impl Into<String>,
        line: u64,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        InputError {
            file: file.into(),
            line: Some(line),
            field: Some(field.into()),
            problem: problem.into(),
        }
    }
}

/// A column of a [`Table`], found by name in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    index: usize,
    name: &'static str,
}

impl Column {
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// A CSV file read whole and checked to be UTF-8, with its header row parsed.
#[derive(Debug)]
pub struct Table {
    name: String,
    rows: Rows,
    header: Vec<String>,
}

/// A table's data rows: CSV text (the header row first), or fields already split.
#[derive(Debug, Clone)]
enum Rows {
    Csv(Vec<u8>),
    Records(Vec<csv::ByteRecord>),
}

impl Table {
    /// Reads `path`; errors name it as the user gave it.
    pub fn read(path: &Path) -> Result<Table, InputError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| InputError::file(&name, format!("cannot read: {e}")))?;
        if meta.is_dir() {
            return Err(InputError::file(&name, "is a folder, not a CSV file"));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(InputError::file(
                &name,
                format!(
                    "is {} bytes, more than the {MAX_FILE_BYTES} accepted",
                    meta.len()
                ),
            ));
        }
        let bytes = std::fs::read(path)
            .map_err(|e| InputError::file(&name, format!("cannot read: {e}")))?;
        Table::from_bytes(name, bytes)
    }

    /// Parses `bytes` as the file `name` (for tests and for inputs that arrive over the network).
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<Table, InputError> {
        let name = name.into();
        if let Err(e) = std::str::from_utf8(&bytes) {
            let at = e.valid_up_to();
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64;
            let column = at
                - bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
            return Err(InputError {
                file: name,
                line: Some(line),
                field: None,
                problem: format!("not UTF-8 (bad byte at column {})", column + 1),
            });
        }
        let mut reader = reader(&bytes);
        let header = reader
            .headers()
            .map_err(|e| csv_error(&name, e))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect::<Vec<_>>();
        if header.iter().all(|h| h.is_empty()) {
            return Err(InputError::file(&name, "is empty: expected a header row"));
        }
        for (i, h) in header.iter().enumerate() {
            if header[..i].contains(h) {
                return Err(InputError::at(
                    &name,
                    1,
                    clip(h),
                    "column appears twice in the header",
                ));
            }
        }
        Ok(Table {
            name,
            rows: Rows::Csv(bytes),
            header,
        })
    }

    /// The file's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header's column names.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// A required column; missing is an error at line 1 naming it.
    pub fn column(&self, name: &'static str) -> Result<Column, InputError> {
        self.optional_column(name).ok_or_else(|| {
            InputError::at(
                &self.name,
                1,
                name,
                format!(
                    "missing column (the header has: {})",
                    clip_to(&self.header.join(","), 200)
                ),
            )
        })
    }

    /// A column that may be absent.
    pub fn optional_column(&self, name: &'static str) -> Option<Column> {
        self.header
            .iter()
            .position(|h| h == name)
            .map(|index| Column { index, name })
    }

    /// Calls `each` for every data row, in file order, stopping at the first error.
    pub fn for_each_row<E: From<InputError>>(
        &self,
        mut each: impl FnMut(Row<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let bytes = match &self.rows {
            Rows::Csv(bytes) => bytes,
            Rows::Records(records) => {
                // Line 1 is the header.
                for (i, record) in records.iter().enumerate() {
                    let line = i as u64 + 2;
                    each(Row {
                        table: self,
                        line,
                        record,
                    })?;
                }
                return Ok(());
            }
        };
        let mut reader = reader(bytes);
        let mut record = csv::ByteRecord::new();
        // Skip the header, already parsed.
        reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(&self.name, e))?;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => return Ok(()),
                Ok(true) => {}
                Err(e) => return Err(csv_error(&self.name, e).into()),
            }
            let line = record.position().map_or(0, |p| p.line());
            each(Row {
                table: self,
                line,
                record: &record,
            })?;
        }
    }

    /// Number of data rows, for allocating: the lines after the header (an upper bound when
    /// quoted fields hold line breaks). Counts line ends without parsing.
    pub fn count_rows(&self) -> usize {
        let bytes = match &self.rows {
            Rows::Csv(bytes) => bytes,
            Rows::Records(records) => return records.len(),
        };
        let ends = memchr::memchr_iter(b'\n', bytes).count();
        let unterminated = usize::from(bytes.last().is_some_and(|&b| b != b'\n'));
        (ends + unterminated).saturating_sub(1)
    }
}

/// A table built from fields already split (rows a program holds, not a file): read like one
/// from CSV text, without writing and parsing the text. Row `k` (from 0) is line `k + 2`.
#[derive(Debug)]
pub struct TableBuilder {
    header: Vec<String>,
    records: Vec<csv::ByteRecord>,
}

impl TableBuilder {
    pub fn new(header: &[&str]) -> TableBuilder {
        TableBuilder {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            records: Vec::new(),
        }
    }

    pub fn row<T: AsRef<str>>(&mut self, fields: impl IntoIterator<Item = T>) {
        let mut record = csv::ByteRecord::new();
        for field in fields {
            record.push_field(field.as_ref().as_bytes());
        }
        self.records.push(record);
    }

    /// The table, named `name` in errors. Every row must have the header's fields.
    pub fn finish(self, name: impl Into<String>) -> Result<Table, InputError> {
        let name = name.into();
        let width = self.header.len();
        if let Some(k) = self.records.iter().position(|r| r.len() != width) {
            let found = self.records[k].len();
            let problem = format!("has {found} fields; the header has {width}");
            return Err(InputError::at(&name, k as u64 + 2, "row", problem));
        }
        Ok(Table {
            name,
            rows: Rows::Records(self.records),
            header: self.header,
        })
    }
}

/// CSV text as the `csv` crate writes it: a field with a comma, a quote or a line break is
/// quoted, so an id that holds one stays one field. Every CSV allot writes goes through it (or
/// through a `csv::Writer` of its own).
#[derive(Debug)]
pub struct CsvText {
    writer: csv::Writer<Vec<u8>>,
}

impl CsvText {
    pub fn new(header: &[&str]) -> CsvText {
        let mut text = CsvText::without_header();
        text.row(header);
        text
    }

    /// Rows only (to append to text that has its header).
    pub fn without_header() -> CsvText {
        CsvText {
            writer: csv::Writer::from_writer(Vec::new()),
        }
    }

    pub fn row<T: AsRef<[u8]>>(&mut self, fields: impl IntoIterator<Item = T>) {
        // Writing into memory cannot fail.
        let _ = self.writer.write_record(fields);
    }

    pub fn finish(self) -> String {
        let bytes = self.writer.into_inner().unwrap_or_default();
        // Every field came from a `&str` or a number: the bytes are UTF-8.
        String::from_utf8(bytes).unwrap_or_default()
    }
}

fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .trim(csv::Trim::None)
        .from_reader(bytes)
}

fn csv_error(file: &str, e: csv::Error) -> InputError {
    let line = e.position().map(|p| p.line());
    let problem = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, the header has {expected_len}"),
        _ => e.to_string(),
    };
    InputError {
        file: file.to_owned(),
        line,
        field: None,
        problem,
    }
}

/// One data row of a [`Table`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    table: &'a Table,
    line: u64,
    record: &'a csv::ByteRecord,
}

impl<'a> Row<'a> {
    /// The row's 1-based line in the file.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The field's text, trimmed of surrounding spaces.
    pub fn text(&self, column: Column) -> &'a str {
        let raw = self.record.get(column.index).unwrap_or_default();
        // The whole file was checked to be UTF-8 and fields split on ASCII, so this cannot fail;
        // an empty string is a safe answer if it ever did.
        std::str::from_utf8(raw).unwrap_or_default().trim()
    }

    /// An error at this row and column.
    pub fn error(&self, column: Column, problem: impl Into<String>) -> InputError {
        InputError::at(&self.table.name, self.line, column.name, problem)
    }

    /// A required, non-empty identifier of at most [`MAX_ID_BYTES`] bytes with no control
    /// characters.
    pub fn id(&self, column: Column) -> Result<&'a str, InputError> {
        let text = self.text(column);
        check_id(text).map_err(|p| self.error(column, p))?;
        Ok(text)
    }

    /// A required field parsed as `T`; `what` describes the expected value in the error.
    pub fn parse<T: FromStr>(&self, column: Column, what: &str) -> Result<T, InputError> {
        let text = self.text(column);
        if text.is_empty() {
            return Err(self.error(column, format!("empty, expected {what}")));
        }
        text.parse()
            .map_err(|_| self.error(column, format!("expected {what}, found '{}'", clip(text))))
    }

    /// An optional field: `None` when empty.
    pub fn parse_optional<T: FromStr>(
        &self,
        column: Column,
        what: &str,
    ) -> Result<Option<T>, InputError> {
        if self.text(column).is_empty() {
            Ok(None)
        } else {
            self.parse(column, what).map(Some)
        }
    }
}

/// Row indices by id, for ids kept elsewhere (in the rows themselves), so that a file of half a
/// million rows does not hold each id twice: a hash table of indices, whose ids are read through
/// `id_of`. The hash is seeded per process.
#[derive(Debug, Default)]
pub struct IdIndex {
    table: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl IdIndex {
    pub fn with_capacity(rows: usize) -> Self {
        IdIndex {
            table: hashbrown::HashTable::with_capacity(rows),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Adds `index` under `id`, unless an equal id is there already: then returns that one's
    /// index. `id_of` gives the id of every index added before.
    pub fn insert<'a>(
        &mut self,
        id: &str,
        index: u32,
        id_of: impl Fn(u32) -> &'a str,
    ) -> Option<u32> {
        use std::hash::BuildHasher;
        let hasher = &self.hasher;
        let hash = hasher.hash_one(id);
        match self
            .table
            .entry(hash, |&k| id_of(k) == id, |&k| hasher.hash_one(id_of(k)))
        {
            hashbrown::hash_table::Entry::Occupied(e) => Some(*e.get()),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(index);
                None
            }
        }
    }

    /// The index added under `id`.
    pub fn get<'a>(&self, id: &str, id_of: impl Fn(u32) -> &'a str) -> Option<u32> {
        use std::hash::BuildHasher;
        self.table
            .find(self.hasher.hash_one(id), |&k| id_of(k) == id)
            .copied()
    }
}

/// Why `text` is not an acceptable identifier, if it is not.
pub fn check_id(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty, expected an id".into());
    }
    if text.len() > MAX_ID_BYTES {
        return Err(format!(
            "id is {} bytes long, at most {MAX_ID_BYTES} accepted",
            text.len()
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("id '{}' contains a control character", clip(text)));
    }
    Ok(())
}

/// A field's text shortened for an error message (a 10 MB field must not become a 10 MB error),
/// with control characters escaped (a quoted field may hold newlines; the error stays one line).
pub fn clip(text: &str) -> String {
    clip_to(text, 40)
}

/// [`clip`] to about `max` characters of output (an escaped character counts as its escape).
pub fn clip_to(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 3));
    let mut shown = 0;
    for c in text.chars() {
        if shown >= max {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            let escaped: String = c.escape_debug().collect();
            shown += escaped.chars().count();
            out.push_str(&escaped);
        } else {
            shown += 1;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A table built from fields reads exactly as the same rows written as CSV text and
        /// parsed: the same fields (commas, quotes, spaces, line breaks and all), and the same
        /// lines while no field breaks a line.
        #[test]
        fn built_tables_read_as_csv_text(
            rows in proptest::collection::vec(
                proptest::collection::vec("[a-z ,\"\n;é]{0,6}", 3),
                0..20,
            )
        ) {
            let header = ["a", "b", "c"];
            let mut text = CsvText::new(&header);
            let mut built = TableBuilder::new(&header);
            for row in &rows {
                text.row(row);
                built.row(row);
            }
            let from_text = Table::from_bytes("t", text.finish().into_bytes()).unwrap();
            let built = built.finish("t").unwrap();
            let read = |table: &Table| {
                let columns: Vec<Column> =
                    header.iter().map(|h| table.column(h).unwrap()).collect();
                let mut out = Vec::new();
                table
                    .for_each_row(|row| -> Result<(), InputError> {
                        let fields: Vec<String> =
                            columns.iter().map(|&c| row.text(c).to_owned()).collect();
                        out.push((row.line(), fields));
                        Ok(())
                    })
                    .unwrap();
                out
            };
            let (a, b) = (read(&from_text), read(&built));
            proptest::prop_assert_eq!(a.len(), b.len());
            let breaks = rows.iter().flatten().any(|f| f.contains('\n'));
            for (x, y) in a.iter().zip(&b) {
                proptest::prop_assert_eq!(&x.1, &y.1);
                if !breaks {
                    proptest::prop_assert_eq!(x.0, y.0);
                }
            }
            proptest::prop_assert_eq!(from_text.count_rows() >= rows.len(), true);
            proptest::prop_assert_eq!(built.count_rows(), rows.len());
        }
    }

    /// Reads `csv` as `t.csv` with columns `id` (an id) and `n` (a u32); renders every row or the
    /// first error.
    fn check(csv: &[u8], expect: &str) {
        let got = (|| -> Result<String, InputError> {
            let table = Table::from_bytes("t.csv", csv.to_vec())?;
            let id = table.column("id")?;
            let n = table.column("n")?;
            let mut out = Vec::new();
            table.for_each_row(|row| -> Result<(), InputError> {
                out.push(format!(
                    "{}:{}={}",
                    row.line(),
                    row.id(id)?,
                    row.parse::<u32>(n, "a count")?
                ));
                Ok(())
            })?;
            Ok(out.join(" "))
        })()
        .unwrap_or_else(|e| e.to_string());
        assert_eq!(got, expect, "input: {:?}", String::from_utf8_lossy(csv));
    }

    #[test]
    fn reads_rows_and_names_file_line_field() {
        check(b"id,n\na,1\nb,2\n", "2:a=1 3:b=2");
        check(b"n,id\n1, a \n", "2:a=1");
        check(b"id,n\n", "");
        check(
            b"id,n\na,1\nb,x\n",
            "t.csv:3: n: expected a count, found 'x'",
        );
        check(b"id,n\na,-1\n", "t.csv:2: n: expected a count, found '-1'");
        check(b"id,n\n,1\n", "t.csv:2: id: empty, expected an id");
        check(b"id,n\na,\n", "t.csv:2: n: empty, expected a count");
        check(
            b"id\na\n",
            "t.csv:1: n: missing column (the header has: id)",
        );
        check(b"", "t.csv: is empty: expected a header row");
        check(
            b"id,n,id\n",
            "t.csv:1: id: column appears twice in the header",
        );
        check(b"id,n\na,1,2\n", "t.csv:2: has 3 fields, the header has 2");
        check(
            b"id,n\na,1\n\xff,2\n",
            "t.csv:3: not UTF-8 (bad byte at column 1)",
        );
        check(
            b"id,n\na\x07b,1\n",
            "t.csv:2: id: id 'a\\u{7}b' contains a control character",
        );
    }

    #[test]
    fn huge_fields_give_short_errors() {
        let mut csv = b"id,n\na,".to_vec();
        csv.extend(std::iter::repeat_n(b'9', 10 << 20));
        csv.push(b'x');
        let table = Table::from_bytes("t.csv", csv).unwrap();
        let n = table.column("n").unwrap();
        let err = table
            .for_each_row(|row| row.parse::<u32>(n, "a count").map(drop))
            .unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn counts_rows() {
        let table = Table::from_bytes("t.csv", b"id,n\na,1\nb,2\n".to_vec()).unwrap();
        assert_eq!(table.count_rows(), 2);
    }
}
