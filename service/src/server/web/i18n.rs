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
        "results" => ("Your application's result", "Результат вашей заявки"),
        "lookup-intro" => (
            "Enter the application window and your applicant id as written on your application's receipt, and the code you were given with it, if any. Nobody can list applicants here.",
            "Введите окно приёма заявок и ваш номер заявителя, как в квитанции о заявке, и код, если он вам был выдан. Список заявителей здесь получить нельзя.",
        ),
        "allocation" => ("What you applied for", "Куда вы подавали заявку"),
        "fair-stalls" => (
            "A stall at a weekend fair",
            "Место на ярмарке выходного дня",
        ),
        "school-seats" => ("A school seat", "Место в школе"),
        "window" => ("Application window", "Окно приёма заявок"),
        "applicant-id" => ("Applicant id", "Номер заявителя"),
        "code" => ("Code (if you were given one)", "Код (если вам его выдали)"),
        "code-help" => (
            "The code printed on your application's receipt. Without it, a wrong id and a wrong code look the same.",
            "Код из квитанции о заявке. Без него ошибка в номере и ошибка в коде выглядят одинаково.",
        ),
        "look-up" => ("Show my result", "Показать мой результат"),
        "server-busy" => (
            "The server is busy: try again in a moment",
            "Сервер занят: попробуйте через минуту",
        ),
        "not-run-yet" => (
            "Your application is received; the allocation has not been run yet.",
            "Ваша заявка принята; распределение ещё не проводилось.",
        ),
        "fair-placed" => ("You were given a stall at", "Вам выделено место на ярмарке"),
        "fair-unplaced" => (
            "You were not given a stall. You are on the waitlist of every fair you listed: if a stall is given back, it is offered down the waitlist.",
            "Место вам не выделено. Вы в листе ожидания каждой ярмарки из вашего списка: если место освободится, его предложат следующему в листе.",
        ),
        "school-placed" => ("You were given a seat at", "Вам выделено место в школе"),
        "school-unplaced" => (
            "You were not given a seat at any school you listed.",
            "Место ни в одной из школ вашего списка не выделено.",
        ),
        "your-choice" => ("your choice no.", "ваш выбор №"),
        "your-group" => ("Your group", "Ваша группа"),
        "your-lottery" => ("your lottery number", "ваш номер жребия"),
        "why-not-better" => (
            "Why not a choice you ranked higher",
            "Почему не выбор, стоящий выше в вашем списке",
        ),
        "tier-0" => ("«local farmers»", "«местные фермеры»"),
        "tier-1" => ("«regional producers»", "«региональные производители»"),
        "tier-2" => ("«other sellers»", "«прочие продавцы»"),
        "tier-order" => (
            "Local farmers are served first, then regional producers, then other sellers; within a group, lower lottery numbers first. The lottery was drawn from a public beacon after the applications were closed.",
            "Первыми обслуживаются местные фермеры, затем региональные производители, затем прочие продавцы; внутри группы — по возрастанию номера жребия. Жребий получен из публичного маяка после закрытия приёма заявок.",
        ),
        "open-pool" => (
            "the open pool (any category)",
            "общий пул (любая категория)",
        ),
        "category" => ("category", "категория"),
        "all-cutoffs" => (
            "Every fair's cutoffs in this window",
            "Проходные границы всех мест в этом окне",
        ),
        "history" => ("Your application, step by step", "Ваша заявка по шагам"),
        "step-received" => ("received", "принята"),
        "step-amended" => ("amended", "изменена"),
        "step-withdrawn" => ("withdrawn", "отозвана"),
        "step-closed" => (
            "included in the closed, committed set of applications",
            "включена в закрытый и зафиксированный набор заявок",
        ),
        "step-placed" => ("given a place", "выделено место"),
        "step-waitlisted" => ("on the waitlists", "в листах ожидания"),
        "step-unplaced" => ("not given a place", "место не выделено"),
        "step-offered" => (
            "offered a place given back",
            "предложено освободившееся место",
        ),
        "step-given-back" => ("gave the place back", "место возвращено"),
        "step-accepted" => ("accepted the place", "место принято"),
        "step-other" => ("recorded", "записано"),
        "log-entry" => ("log entry", "запись журнала"),
        "receipt-title" => ("Your receipt", "Ваша квитанция"),
        "receipt-proves" => (
            "This receipt proves that the decision above is an entry of the city's public decision log, signed by the log's key. The log only grows: once a checkpoint covering your decision is published, nobody, the city included, can change or remove it without the change showing to everyone who keeps a receipt or a checkpoint. Save the receipt; this page checks it here, in your browser, without sending it anywhere.",
            "Эта квитанция доказывает, что решение выше — запись публичного журнала решений города, подписанная ключом журнала. Журнал только растёт: после публикации контрольной точки, покрывающей ваше решение, никто, включая город, не может изменить или удалить его незаметно для всех, кто хранит квитанцию или контрольную точку. Сохраните квитанцию; страница проверяет её здесь, в вашем браузере, никуда её не отправляя.",
        ),
        "receipt-pending" => (
            "No signed checkpoint covers your decision yet; the next one will. Come back later for its receipt. The decision is log entry",
            "Подписанной контрольной точки, покрывающей ваше решение, ещё нет; следующая покроет его. Вернитесь позже за квитанцией. Решение — запись журнала",
        ),
        "receipt-label" => (
            "The receipt (c2sp.org/tlog-proof)",
            "Квитанция (c2sp.org/tlog-proof)",
        ),
        "check-receipt" => (
            "Check the receipt in this browser",
            "Проверить квитанцию в этом браузере",
        ),
        "receipt-ok" => (
            "The receipt is valid: entry {index} is in the log of {size} entries that the log's key signed.",
            "Квитанция верна: запись {index} входит в журнал из {size} записей, подписанный ключом журнала.",
        ),
        "receipt-bad" => (
            "The receipt does NOT check:",
            "Квитанция НЕ проходит проверку:",
        ),
        "receipt-no-crypto" => (
            "This browser offers no WebCrypto here (it needs HTTPS): check the receipt with allot audit on a computer.",
            "Браузер не даёт здесь WebCrypto (нужен HTTPS): проверьте квитанцию командой allot audit на компьютере.",
        ),
        "cutoffs" => ("Published cutoffs", "Опубликованные проходные границы"),
        "cutoffs-help" => (
            "For every place: how many there were, how many were given, and the priority of the last applicant admitted (anyone with a better priority who asked got in).",
            "Для каждого места: сколько их было, сколько выделено, и приоритет последнего принятого заявителя (любой с лучшим приоритетом, кто просил это место, его получил).",
        ),
        "show" => ("Show", "Показать"),
        "place" => ("Place", "Место"),
        "pool" => ("Pool", "Пул"),
        "places" => ("Places", "Мест"),
        "given" => ("Given", "Выделено"),
        "last-admitted" => ("Last admitted", "Последний принятый"),
        "not-full" => (
            "not full: everyone who asked got in",
            "не заполнено: приняты все, кто просил",
        ),
        "lottery" => ("lottery", "жребий"),
        "class" => ("priority class", "класс приоритета"),
        "rows" => ("Rows", "Строки"),
        "next-rows" => ("next rows", "следующие строки"),
        "fairs" => ("Fairs: windows and runs", "Ярмарки: окна и распределения"),
        "windows" => ("Application windows", "Окна приёма заявок"),
        "pools" => ("Stall pools", "Пулы мест"),
        "applications" => ("Applications", "Заявки"),
        "state" => ("State", "Состояние"),
        "runs" => ("Runs", "Распределения"),
        "open" => ("open", "открыто"),
        "closed" => ("closed", "закрыто"),
        "no-windows" => (
            "No window has received anything yet.",
            "Ни одно окно ещё ничего не получило.",
        ),
        "submit-title" => ("Submit applications", "Подать заявки"),
        "submit-help" => (
            "fairs.csv (fair, district, category, stalls) and applicants.csv (applicant, category, tier, [lottery], choices; optional column code: each applicant's second factor), as for allot fair run. The whole submission is accepted or nothing is.",
            "fairs.csv (fair, district, category, stalls) и applicants.csv (applicant, category, tier, [lottery], choices; необязательный столбец code — второй фактор заявителя), как для allot fair run. Принимается вся подача целиком или ничего.",
        ),
        "submit" => ("Submit", "Подать"),
        "upload-failed" => ("The upload did not arrive whole", "Файлы пришли не целиком"),
        "both-files" => (
            "Choose both files: fairs.csv and applicants.csv.",
            "Выберите оба файла: fairs.csv и applicants.csv.",
        ),
        "back" => ("Back", "Назад"),
        "no-such-window" => ("no such window", "такого окна нет"),
        "live-counts" => (
            "Open: applications are arriving; this page reloads every 10 seconds.",
            "Открыто: заявки поступают; страница обновляется каждые 10 секунд.",
        ),
        "close-title" => ("Close the window", "Закрыть окно"),
        "close-help" => (
            "Closing fixes the set of applications and logs its digest; the lottery is then drawn from a beacon published after this moment. A closed window takes no more applications.",
            "Закрытие фиксирует набор заявок и записывает его хеш в журнал; затем жребий берётся из маяка, опубликованного после этого момента. Закрытое окно больше не принимает заявок.",
        ),
        "close" => ("Close it", "Закрыть"),
        "run-title" => ("Run the allocation", "Провести распределение"),
        "mechanism" => ("Mechanism", "Механизм"),
        "mech-da" => (
            "deferred acceptance (stable, strategy-proof)",
            "отложенное принятие (устойчиво, стратегически защищено)",
        ),
        "mech-welfare" => (
            "welfare (places most, best ranks; not strategy-proof)",
            "благосостояние (больше всего мест, лучшие позиции; не защищено от стратегий)",
        ),
        "mech-rsd" => (
            "random serial dictatorship (strategy-proof)",
            "случайная очерёдность (стратегически защищено)",
        ),
        "mech-other" => ("other", "другой"),
        "beacon-source" => ("Beacon source", "Источник маяка"),
        "beacon-round" => ("Beacon round", "Раунд маяка"),
        "beacon-value" => ("Beacon value (hex)", "Значение маяка (hex)"),
        "beacon-help" => (
            "The random value a public beacon published after the close (16 to 512 bytes as hex). Leave empty only if every applicant has a lottery number.",
            "Случайное значение, опубликованное публичным маяком после закрытия (от 16 до 512 байт в hex). Оставьте пустым, только если у каждого заявителя есть номер жребия.",
        ),
        "precedence" => (
            "Which pool of a fair fills first",
            "Какой пул ярмарки заполняется первым",
        ),
        "own-first" => (
            "the applicant's own category, then the open pool",
            "своя категория заявителя, затем общий пул",
        ),
        "open-first" => (
            "the open pool, then the own category",
            "общий пул, затем своя категория",
        ),
        "run" => ("Run", "Провести"),
        "compare-title" => ("Mechanisms side by side", "Механизмы рядом"),
        "compare-help" => (
            "Runs deferred acceptance, welfare and random serial dictatorship on this window with the same beacon, each logged as its own run, and shows them side by side.",
            "Проводит отложенное принятие, благосостояние и случайную очерёдность на этом окне с одним маяком, каждое как отдельное распределение в журнале, и показывает их рядом.",
        ),
        "compare-run" => ("Run all three and compare", "Провести все три и сравнить"),
        "compare-explained" => (
            "Welfare places the most applicants, tier by tier, with the best ranks, but an applicant can gain by misreporting their list; deferred acceptance and random serial dictatorship are strategy-proof: listing one's true preferences is always best.",
            "Благосостояние размещает больше всего заявителей, группа за группой, с лучшими позициями, но заявитель может выиграть, исказив свой список; отложенное принятие и случайная очерёдность защищены от стратегий: указать истинные предпочтения всегда выгоднее всего.",
        ),
        "figure" => ("Figure", "Показатель"),
        "placed" => ("placed", "размещено"),
        "first-choice" => ("given their first choice", "получили первый выбор"),
        "rank2-sum" => (
            "sum of squared ranks (lower is better)",
            "сумма квадратов позиций (меньше — лучше)",
        ),
        "fill-rate" => ("stalls filled", "занято мест"),
        "strategy-proof" => ("strategy-proof", "защищено от стратегий"),
        "yes" => ("yes", "да"),
        "no" => ("no", "нет"),
        "run-results" => ("Run results", "Результаты распределения"),
        "run-id" => ("Run", "Распределение"),
        "bad-run-id" => (
            "a run id is 64 hexadecimal digits",
            "идентификатор распределения — 64 шестнадцатеричные цифры",
        ),
        "placed-per-tier" => ("Placed per group", "Размещено по группам"),
        "group" => ("Group", "Группа"),
        "all" => ("all", "все"),
        "rank-distribution" => (
            "Rank of the fair given",
            "Позиция полученной ярмарки в списке",
        ),
        "rank-chart" => (
            "Placed applicants by the rank, in their own list, of the fair they got (1 = first choice).",
            "Размещённые заявители по позиции полученной ярмарки в их списке (1 — первый выбор).",
        ),
        "choice" => ("choice", "выбор"),
        "rows-shown" => ("Rows shown", "Показано строк"),
        "waitlist-places" => ("places on waitlists", "мест в листах ожидания"),
        "downloads" => ("Downloads (CSV)", "Скачать (CSV)"),
        "verify-run" => (
            "Verify this run (re-run it from the log)",
            "Проверить распределение (повторить по журналу)",
        ),
        "re-offer-title" => ("A stall given back", "Возврат места"),
        "re-offer-help" => (
            "An applicant gives their stall back: it is offered to the next eligible applicant on that pool's waitlist, each step logged.",
            "Заявитель возвращает место: его предлагают следующему подходящему заявителю из листа ожидания этого пула, каждый шаг записывается в журнал.",
        ),
        "give-back" => ("Give the stall back", "Вернуть место"),
        "seat-re-offer-title" => ("A seat given back", "Возврат места в школе"),
        "seat-re-offer-help" => (
            "A student gives their seat back: it is offered to the first student on that school's waitlist whom the school admits (its reserved seats respected); the seat that student leaves is offered the same way, each step logged.",
            "Ученик возвращает место: его предлагают первому ученику из листа ожидания этой школы, которого школа может принять (с учётом квот); освободившееся место предлагают так же, каждый шаг записывается в журнал.",
        ),
        "student-id" => ("Student id", "Номер ученика"),
        "give-seat-back" => ("Give the seat back", "Вернуть место"),
        "nobody-waiting-seat" => (
            "Nobody the school admits was waiting: the seat stays free.",
            "Подходящих ожидающих нет: место остаётся свободным.",
        ),
        "given-back" => ("Given back:", "Возвращено:"),
        "re-offered-to" => ("Re-offered to", "Предложено"),
        "nobody-waiting" => (
            "Nobody eligible was waiting: the stall stays free.",
            "Подходящих ожидающих нет: место остаётся свободным.",
        ),
        "pick-one" => ("choose one of the list", "выберите из списка"),
        "not-hex" => (
            "must be hexadecimal digits",
            "должно состоять из шестнадцатеричных цифр",
        ),
        "not-number" => ("must be a whole number", "должно быть целым числом"),
        "verified" => (
            "Verified: the re-run from the log and the stored inputs gives the logged outcome.",
            "Проверено: повтор по журналу и сохранённым данным даёт записанный результат.",
        ),
        "not-verified" => (
            "NOT verified: see the failed checks.",
            "НЕ подтверждено: см. непройденные проверки.",
        ),
        "check" => ("Check", "Проверка"),
        "result" => ("Result", "Итог"),
        "found" => ("Found", "Найдено"),
        "passed" => ("passed", "пройдена"),
        "failed" => ("FAILED", "НЕ ПРОЙДЕНА"),
        "outcome-digest" => ("Outcome digest", "Хеш результата"),
        "planning" => (
            "Planning: what-if simulations",
            "Планирование: моделирование сценариев",
        ),
        "simulate-title" => ("Start a simulation", "Запустить моделирование"),
        "example" => ("An example scenario", "Пример сценария"),
        "scenario-file" => (
            "Or your scenario file (TOML)",
            "Или ваш файл сценария (TOML)",
        ),
        "scenario-help" => (
            "As for allot simulate: the city, the period and the variants. A file chosen here is used instead of the example.",
            "Как для allot simulate: город, период и варианты. Выбранный здесь файл используется вместо примера.",
        ),
        "runs-per-variant" => (
            "Monte Carlo runs per variant",
            "Прогонов Монте-Карло на вариант",
        ),
        "simulate" => ("Simulate", "Моделировать"),
        "earlier" => ("Your simulations", "Ваши моделирования"),
        "simulation" => ("Simulation", "Моделирование"),
        "running" => ("running", "идёт"),
        "finished" => ("finished", "завершено"),
        "side-by-side" => ("Compare A and B side by side", "Сравнить A и B рядом"),
        "progress" => ("Progress", "Ход выполнения"),
        "refreshes" => (
            "This page refreshes itself every second until the simulation ends.",
            "Страница обновляется каждую секунду, пока моделирование не закончится.",
        ),
        "open-report" => (
            "Open the report with its charts",
            "Открыть отчёт с графиками",
        ),
        "no-simulation" => (
            "No such simulation of yours is kept (the server keeps the last 20).",
            "Такого вашего моделирования нет (сервер хранит последние 20).",
        ),
        "pick-two" => (
            "Choose two simulations, A and B.",
            "Выберите два моделирования, A и B.",
        ),
        "not-finished" => (
            "Both simulations must have finished.",
            "Оба моделирования должны быть завершены.",
        ),
        "compare-simulations" => (
            "Each cell: the mean over the runs and its 95% confidence interval.",
            "В каждой клетке: среднее по прогонам и его 95% доверительный интервал.",
        ),
        "not-utf8" => ("is not UTF-8 text", "не является текстом UTF-8"),
        "clinic-actions" => (
            "Absences and re-balancing",
            "Отсутствия и перераспределение",
        ),
        "absence-title" => ("A doctor's absence", "Отсутствие врача"),
        "doctor" => ("Doctor id", "Код врача"),
        "absent-from" => ("Absent from (city time)", "Отсутствует с (местное время)"),
        "absent-until" => ("Until (city time)", "До (местное время)"),
        "mark-absence" => (
            "Mark the absence and re-offer",
            "Отметить отсутствие и предложить замену",
        ),
        "bad-time" => ("give a date and time", "укажите дату и время"),
        "unavailable-slots" => ("slots made unavailable", "слотов стало недоступно"),
        "freed-bookings" => ("bookings displaced", "записей затронуто"),
        "ended-holds" => ("holds ended", "удержаний снято"),
        "re-offers" => (
            "Re-offers to displaced patients",
            "Предложения перенесённым пациентам",
        ),
        "appointment" => ("Appointment", "Запись"),
        "patient" => ("Patient", "Пациент"),
        "freed-slot" => ("Slot freed", "Освобождённый слот"),
        "offered-slot" => ("Slot offered (clinic)", "Предложенный слот (поликлиника)"),
        "offer-expires" => ("Offer expires", "Предложение действует до"),
        "cancelled-contact" => (
            "Cancelled, no slot found: contact these patients",
            "Отменены, слот не найден: свяжитесь с этими пациентами",
        ),
        "rebalance-title" => (
            "Re-balance a queue of referrals",
            "Перераспределить очередь направлений",
        ),
        "rebalance-help" => (
            "requests.csv (request, patient, district, specialty, earliest), as for allot appointments rebalance: the whole queue is assigned by min-cost flow, balancing travel, waiting and clinics' load.",
            "requests.csv (request, patient, district, specialty, earliest), как для allot appointments rebalance: вся очередь распределяется потоком минимальной стоимости с учётом дороги, ожидания и загрузки поликлиник.",
        ),
        "commit-bookings" => (
            "Book the assignment (otherwise a plan only)",
            "Записать пациентов (иначе только план)",
        ),
        "rebalance" => ("Re-balance", "Перераспределить"),
        "choose-file" => ("choose the file", "выберите файл"),
        "booked-now" => ("The assignment is booked.", "Распределение записано."),
        "plan-only" => (
            "A plan only: nothing was booked.",
            "Только план: никто не записан.",
        ),
        "optimised" => ("min-cost flow", "поток минимальной стоимости"),
        "greedy" => (
            "nearest, earliest (greedy)",
            "ближайший, раньше всех (жадно)",
        ),
        "assigned" => ("referrals given a slot", "направлений со слотом"),
        "unassigned" => ("left without a slot", "осталось без слота"),
        "cost" => ("total cost (points)", "общая стоимость (баллы)"),
        "max-utilisation" => (
            "highest clinic-day load",
            "наибольшая загрузка поликлиники за день",
        ),
        "wait-p50" => ("waiting days, median", "дней ожидания, медиана"),
        "wait-p95" => (
            "waiting days, 95th percentile",
            "дней ожидания, 95-й процентиль",
        ),
        "travel" => ("mean travel, km", "средний путь, км"),
        "solve-time" => ("Time", "Время"),
        "assignments" => ("Assignments", "Назначения"),
        "referral" => ("Referral", "Направление"),
        "clinic" => ("Clinic", "Поликлиника"),
        "slot" => ("Slot", "Слот"),
        "starts" => ("Starts", "Начало"),
        "cosigned" => (
            "Latest checkpoint cosigned by the witnesses",
            "Последняя контрольная точка, подписанная свидетелями",
        ),
        "cosignatures" => ("witnesses' cosignatures", "подписей свидетелей"),
        "growth" => ("The log's growth", "Рост журнала"),
        "growth-caption" => (
            "Entries in the log over time",
            "Число записей журнала во времени",
        ),
        "schools" => ("Schools: windows and runs", "Школы: окна и распределения"),
        "schools-count" => ("Schools", "Школы"),
        "school-submit-help" => (
            "schools.csv (school, capacity), students.csv (student, [lottery], choices; optional column code: each family's second factor), priorities.csv (school, student, priority) and, with reserved seats, reserves.csv, as for allot school run. The whole submission is accepted or nothing is.",
            "schools.csv (school, capacity), students.csv (student, [lottery], choices; необязательный столбец code — второй фактор семьи), priorities.csv (school, student, priority) и, при резервах мест, reserves.csv, как для allot school run. Принимается вся подача целиком или ничего.",
        ),
        "three-files" => (
            "Choose schools.csv, students.csv and priorities.csv.",
            "Выберите schools.csv, students.csv и priorities.csv.",
        ),
        "school-da" => (
            "deferred acceptance (stable, strategy-proof)",
            "отложенное принятие (устойчиво, защищено от стратегий)",
        ),
        "school-proposing-da" => (
            "school-proposing deferred acceptance",
            "отложенное принятие, предлагают школы",
        ),
        "school-ttc" => (
            "top trading cycles (efficient, strategy-proof, not stable)",
            "циклы главного обмена (эффективно, защищено от стратегий, неустойчиво)",
        ),
        "school-boston" => (
            "Boston (immediate acceptance; not strategy-proof)",
            "бостонский (немедленное принятие; не защищён от стратегий)",
        ),
        "school-eada" => (
            "efficiency-adjusted DA (more efficient, not strategy-proof)",
            "DA с поправкой на эффективность (эффективнее, не защищён от стратегий)",
        ),
        "school-beacon-help" => (
            "The random value a public beacon published after the close (16 to 512 bytes as hex). Leave empty only if every student has a lottery number and tie-breaking is single.",
            "Случайное значение, опубликованное публичным маяком после закрытия (от 16 до 512 байт в hex). Оставьте пустым, только если у каждого ученика есть номер жребия и жребий единый.",
        ),
        "tie-breaking" => (
            "Tie-breaking within a priority class",
            "Жребий внутри класса приоритета",
        ),
        "tie-single" => ("one lottery number per student", "один номер на ученика"),
        "tie-multiple" => (
            "a lottery number per student and school",
            "номер на каждую пару ученик–школа",
        ),
        "school-compare-help" => (
            "Runs DA, TTC, Boston and EADA on this window with the same beacon, each logged as its own run, and shows them side by side.",
            "Проводит DA, TTC, бостонский и EADA на этом окне с одним маяком, каждое как отдельное распределение в журнале, и показывает их рядом.",
        ),
        "school-compare-explained" => (
            "DA is stable and strategy-proof: listing one's true preferences is always best, and no student is passed over for one of lower priority. TTC and EADA place students at better-ranked schools but are not stable (EADA is not strategy-proof); Boston rewards ranking strategically.",
            "DA устойчиво и защищено от стратегий: указать истинные предпочтения всегда выгоднее, и никого не обходят ради ученика с меньшим приоритетом. TTC и EADA дают ученикам школы выше в списках, но неустойчивы (EADA не защищён от стратегий); бостонский механизм вознаграждает стратегическое заполнение списка.",
        ),
        "students" => ("Students", "Ученики"),
        "class-order" => (
            "At each school, students are served by priority class (0 first, as the school's rules give them), then by lottery number, lower first. The lottery was drawn from a public beacon after the applications were closed.",
            "В каждой школе ученики обслуживаются по классу приоритета (0 — первым, по правилам школы), затем по номеру жребия, от меньшего. Жребий получен из публичного маяка после закрытия приёма заявок.",
        ),
        "seats-given" => ("given a seat", "получили место"),
        "no-seat" => ("without a seat", "без места"),
        "blocking-pairs" => ("blocking pairs", "блокирующие пары"),
        "justified-envy" => (
            "students with justified envy",
            "ученики с обоснованной завистью",
        ),
        "school-rank-distribution" => (
            "Rank of the school given",
            "Позиция полученной школы в списке",
        ),
        _ => (key, key),
    };
    match lang {
        Lang::En => en,
        Lang::Ru => ru,
    }
}
