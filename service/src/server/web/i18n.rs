//! The console's words in Russian and English. A page asks [`text`] for a key; the language
//! comes from `?lang=`, then the `allot_lang` cookie, then `Accept-Language`.

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    /// The `lang` attribute's value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().get(..2)?.to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    /// The first of Russian and English in an `Accept-Language` header, by its order (weights
    /// are written in order by every browser); English when neither.
    pub fn from_accept(header: &str) -> Lang {
        header
            .split(',')
            .find_map(|part| Lang::parse(part.split(';').next().unwrap_or("")))
            .unwrap_or(Lang::En)
    }

    /// The other language, for the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Ru,
            Lang::Ru => Lang::En,
        }
    }
}

/// The text of `key` in `lang` (the key itself if unknown: a missing word shows, never panics).
pub fn text(lang: Lang, key: &'static str) -> &'static str {
    let (en, ru) = match key {
        "title" => (
            "allot: city allocations",
            "allot: распределение городских ресурсов",
        ),
        "skip" => ("Skip to the content", "Перейти к содержанию"),
        "language" => ("Русский", "English"),
        "sign-in" => ("Sign in", "Войти"),
        "sign-out" => ("Sign out", "Выйти"),
        "token" => ("Access token", "Токен доступа"),
        "token-help" => (
            "The token your administrator gave you (allot token new). It is kept on the server for this session only.",
            "Токен, выданный администратором (allot token new). Он хранится на сервере только на время сеанса.",
        ),
        "signed-in-as" => ("Signed in as", "Вы вошли как"),
        "roles" => ("Roles", "Роли"),
        "your-pages" => ("Your pages", "Ваши страницы"),
        "audit" => ("Audit: the decision log", "Аудит: журнал решений"),
        "no-pages" => (
            "Your roles have no pages here yet.",
            "Для ваших ролей здесь пока нет страниц.",
        ),
        "bad-token" => (
            "This token is not known to the server: check it and try again.",
            "Сервер не знает этот токен: проверьте его и попробуйте снова.",
        ),
        "forbidden" => (
            "Your roles do not give access to this page.",
            "Ваши роли не дают доступа к этой странице.",
        ),
        "signed-out" => (
            "You are not signed in (or your session ended): sign in again.",
            "Вы не вошли в систему (или сеанс истёк): войдите снова.",
        ),
        "csrf" => (
            "The form had expired or did not come from this site: open the page again and resend it.",
            "Форма устарела или пришла не с этого сайта: откройте страницу заново и отправьте её снова.",
        ),
        "checkpoint" => (
            "Latest signed checkpoint",
            "Последняя подписанная контрольная точка",
        ),
        "origin" => ("Log", "Журнал"),
        "tree-size" => ("Entries covered", "Записей под подписью"),
        "log-size" => ("Entries in the log now", "Записей в журнале сейчас"),
        "root-hash" => ("Root hash (SHA-256)", "Корневой хеш (SHA-256)"),
        "verifier-key" => ("The log's key", "Ключ журнала"),
        "entry" => ("Entry number", "Номер записи"),
        "prove" => ("Prove its inclusion", "Доказать включение"),
        "leaf-hash" => ("Leaf hash", "Хеш листа"),
        "path" => (
            "Audit path (sibling hashes, leaf upwards)",
            "Путь аудита (соседние хеши от листа вверх)",
        ),
        "receipt" => (
            "Receipt (c2sp.org/tlog-proof)",
            "Квитанция (c2sp.org/tlog-proof)",
        ),
        "bad-entry" => (
            "The entry number must be a whole number from 0.",
            "Номер записи должен быть целым числом от 0.",
        ),
        "clinics" => ("Clinics: slots and load", "Поликлиники: слоты и загрузка"),
        "inventory" => ("Slots by status", "Слоты по статусу"),
        "status" => ("Status", "Статус"),
        "count" => ("Slots", "Слотов"),
        "free" => ("free", "свободны"),
        "busy-tentative" => ("held", "удерживаются"),
        "busy" => ("booked", "заняты"),
        "busy-unavailable" => ("unavailable (absences)", "недоступны (отсутствие врача)"),
        "heat-map" => ("Load by clinic and day", "Загрузка по поликлиникам и дням"),
        "heat-map-help" => (
            "Each cell is one clinic on one day: the share of its open slots that are held or booked. Point at a cell for its figures.",
            "Каждая клетка — одна поликлиника в один день: доля её открытых слотов, которые удерживаются или заняты. Наведите на клетку, чтобы увидеть числа.",
        ),
        "next-page" => ("Next clinics", "Следующие поликлиники"),
        "legend" => ("Share of open slots taken", "Доля занятых открытых слотов"),
        "server-error" => ("The server could not answer", "Сервер не смог ответить"),
        _ => (key, key),
    };
    match lang {
        Lang::En => en,
        Lang::Ru => ru,
    }
}
