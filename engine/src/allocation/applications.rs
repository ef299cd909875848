//! What every application file has, read the same way for each domain: the participant's id
//! (unique in the file), an optional lottery column (distinct numbers up to
//! [`MAX_LOTTERY`]) and the choices (known places separated by `;`, best first, each once).

use allot_solvers::matching::MAX_LOTTERY;
use foldhash::{HashMap, HashMapExt};

use crate::input::{Column, IdIndex, InputError, Row, Table, check_id, clip};

/// One application's common fields.
#[derive(Debug)]
pub(crate) struct Application<'r> {
    pub id: &'r str,
    pub lottery: Option<u64>,
    pub choices: Vec<u32>,
}

/// Reads the common columns of an application file, row after row.
#[derive(Debug)]
pub(crate) struct Applications<'t> {
    id: Column,
    lottery: Option<Column>,
    choices: Column,
    /// What a choice names (`fair`, `school`) and the file that lists them.
    place: &'static str,
    places_file: &'t str,
    lottery_what: String,
    ids: IdIndex,
    lines: Vec<u64>,
    lotteries: HashMap<u64, u32>,
    /// Per place, the last row that listed it.
    seen: Vec<usize>,
}

impl<'t> Applications<'t> {
    /// `id`: the id column's name; `places`: how many places the choices may name, listed in
    /// `places_file`.
    pub fn new(
        table: &Table,
        id: &'static str,
        place: &'static str,
        places_file: &'t str,
        places: usize,
    ) -> Result<Self, InputError> {
        let rows = table.count_rows();
        Ok(Applications {
            id: table.column(id)?,
            lottery: table.optional_column("lottery"),
            choices: table.column("choices")?,
            place,
            places_file,
            lottery_what: format!("a lottery number (0 to {MAX_LOTTERY})"),
            ids: IdIndex::with_capacity(rows),
            lines: Vec::with_capacity(rows),
            lotteries: HashMap::with_capacity(rows),
            seen: vec![usize::MAX; places],
        })
    }

    /// Whether the file has a lottery column.
    pub fn lottery_given(&self) -> bool {
        self.lottery.is_some()
    }

    /// Reads row number `rows_read` (0-based, in file order). `id_of(k)` is the id of row `k`
    /// read before; `index` finds a place by id.
    pub fn read<'r, 'a>(
        &mut self,
        row: &Row<'r>,
        id_of: impl Fn(u32) -> &'a str,
        index: &HashMap<&str, u32>,
    ) -> Result<Application<'r>, InputError> {
        let me = self.lines.len();
        let id = row.id(self.id)?;
        if let Some(first) = self.ids.insert(id, me as u32, &id_of) {
            return Err(row.error(
                self.id,
                format!(
                    "'{}' appears twice (first on line {})",
                    clip(id),
                    self.lines[first as usize]
                ),
            ));
        }
        let lottery = match self.lottery {
            None => None,
            Some(c) => {
                let n = row.parse::<u64>(c, &self.lottery_what)?;
                if n > MAX_LOTTERY {
                    let what = &self.lottery_what;
                    return Err(row.error(c, format!("expected {what}, found '{n}'")));
                }
                if let Some(other) = self.lotteries.insert(n, me as u32) {
                    return Err(row.error(
                        c,
                        format!(
                            "{n} is also the lottery number of '{}' (line {}); lottery numbers \
                             must be distinct",
                            clip(id_of(other)),
                            self.lines[other as usize]
                        ),
                    ));
                }
                Some(n)
            }
        };
        let (c, place) = (self.choices, self.place);
        let text = row.text(c);
        if text.is_empty() {
            return Err(row.error(c, format!("empty, expected {place} ids separated by ';'")));
        }
        let mut choices = Vec::with_capacity(text.len() / 4 + 1);
        for (k, choice) in text.split(';').map(str::trim).enumerate() {
            let Some(&p) = index.get(choice) else {
                if let Err(problem) = check_id(choice) {
                    return Err(row.error(c, format!("choice {}: {problem}", k + 1)));
                }
                return Err(row.error(
                    c,
                    format!(
                        "unknown {place} '{}' (not in {})",
                        clip(choice),
                        self.places_file
                    ),
                ));
            };
            if std::mem::replace(&mut self.seen[p as usize], me) == me {
                return Err(row.error(c, format!("{place} '{}' is listed twice", clip(choice))));
            }
            choices.push(p);
        }
        self.lines.push(row.line());
        Ok(Application {
            id,
            lottery,
            choices,
        })
    }

    /// The row (0-based, in file order) of the application with this id.
    pub fn find<'a>(&self, id: &str, id_of: impl Fn(u32) -> &'a str) -> Option<u32> {
        self.ids.get(id, id_of)
    }
}
