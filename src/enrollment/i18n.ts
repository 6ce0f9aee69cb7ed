/**
 * Languages of the public pages: Russian and English. The choice is, in order: `?lang=` (then
 * remembered in a cookie), the cookie, `Accept-Language`, the program's default language.
 */
export type Lang = 'ru' | 'en';
export const LANGS: readonly Lang[] = ['ru', 'en'];
export const LANG_COOKIE = 'wc_lang';

export const isLang = (value: unknown): value is Lang => value === 'ru' || value === 'en';

/** The best of ru/en in an Accept-Language header (q-values honoured), or undefined. */
export function langFromAcceptLanguage(header: string | undefined): Lang | undefined {
  if (!header) return undefined;
  let best: { lang: Lang; q: number; order: number } | undefined;
  header.split(',').forEach((part, order) => {
    const [tag, ...params] = part.trim().split(';');
    const primary = tag.trim().toLowerCase().split('-')[0];
    if (!isLang(primary)) return;
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (!Number.isFinite(q) || q <= 0) return;
    if (!best || q > best.q || (q === best.q && order < best.order)) best = { lang: primary, q, order };
  });
  return best?.lang;
}

export function chooseLang(input: { query?: unknown; cookie?: unknown; acceptLanguage?: string; fallback: Lang }): Lang {
  if (isLang(input.query)) return input.query;
  if (isLang(input.cookie)) return input.cookie;
  return langFromAcceptLanguage(input.acceptLanguage) ?? input.fallback;
}

export function formatNumber(lang: Lang, value: number): string {
  return new Intl.NumberFormat(lang === 'ru' ? 'ru-RU' : 'en-US').format(value);
}

/** "1 балл / 2 балла / 5 баллов" and "1 point / 2 points". */
export function points(lang: Lang, value: number): string {
  const n = formatNumber(lang, value);
  if (lang === 'en') return `${n} ${value === 1 ? 'point' : 'points'}`;
  const mod10 = value % 10;
  const mod100 = value % 100;
  const word = mod10 === 1 && mod100 !== 11 ? 'балл' : mod10 >= 2 && mod10 <= 4 && (mod100 < 12 || mod100 > 14) ? 'балла' : 'баллов';
  return `${n} ${word}`;
}

export type FieldName = 'name' | 'phone' | 'email' | 'birthday';

const ru = {
  langName: 'Русский',
  switchTo: 'Switch to English',
  joinTitle: (program: string) => `Карта «${program}»`,
  joinLead: 'Заполните форму — карта появится в Apple Wallet или Google Кошельке на вашем телефоне.',
  welcomeBonus: (p: number) => `${points('ru', p)} в подарок за регистрацию`,
  referralBonus: (p: number, later: boolean) =>
    later ? `Ещё ${points('ru', p)} от друга после первой покупки` : `Ещё ${points('ru', p)} от друга, который вас пригласил`,
  invited: 'Вас пригласил друг',
  name: 'Имя',
  phone: 'Телефон',
  phoneHint: 'Например, +7 916 123-45-67',
  email: 'E-mail',
  birthday: 'Дата рождения',
  optional: 'необязательно',
  consentHeading: 'Согласие на рассылку',
  defaultConsent: (program: string) =>
    `Я согласен(на) получать от «${program}» новости и персональные предложения в Apple Wallet, Google Кошельке, по SMS и e-mail. Согласие можно отозвать в любой момент.`,
  terms: 'Условия программы',
  submit: 'Получить карту',
  honeypot: 'Оставьте это поле пустым',
  errorsHeading: 'Проверьте форму',
  errors: {
    nameRequired: 'Укажите имя',
    nameTooLong: 'Имя слишком длинное (не больше 200 символов)',
    phoneRequired: 'Укажите номер телефона',
    phoneInvalid: 'Номер не похож на телефонный. Укажите его полностью, например +7 916 123-45-67',
    emailInvalid: 'Адрес e-mail указан неверно',
    birthdayInvalid: 'Дата рождения указана неверно',
    botSuspected: 'Не получилось отправить форму. Проверьте данные и нажмите «Получить карту» ещё раз.',
  },
  alreadyTitle: 'У этого номера уже есть карта',
  alreadyText: (program: string) =>
    `Номер уже зарегистрирован в программе «${program}», повторный бонус не начисляется. Карта уже может быть в приложении Wallet на вашем телефоне. Если её там нет, попросите кассира найти карту по номеру телефона — он покажет QR-код для установки.`,
  backToForm: 'Вернуться к форме',
  tooManyTitle: 'Слишком много попыток',
  tooManyText: 'Подождите минуту и попробуйте снова.',
  notFoundTitle: 'Страница не найдена',
  notFoundText: 'Проверьте ссылку или QR-код.',
  cardTitle: (program: string) => `Ваша карта «${program}»`,
  hello: (name: string) => `Здравствуйте, ${name}!`,
  balance: 'Баланс',
  tier: 'Уровень',
  cardNumber: 'Номер карты',
  blocked: 'Карта заблокирована. Обратитесь к кассиру.',
  addApple: 'Добавить в Apple Wallet',
  addGoogle: 'Добавить в Google Кошелёк',
  walletHeading: 'Добавьте карту в телефон',
  scanOnPhone: 'Откройте камеру телефона и наведите её на этот код, чтобы открыть карту на телефоне.',
  pageQrLabel: 'QR-код ссылки на эту страницу',
  barcodeHeading: 'Покажите код на кассе',
  barcodeLabel: (number: string) => `QR-код карты ${number}`,
  pkpassLink: 'Скачать файл карты (.pkpass) — для Android-приложений, которые открывают такие файлы',
  referralHeading: 'Пригласите друзей',
  referralText: (inviter: number, invitee: number) =>
    `Вы получите ${points('ru', inviter)}, а друг — ${points('ru', invitee)}.`,
  referralLink: 'Ваша ссылка для приглашения (выделите и скопируйте)',
  shareVia: (service: string) => `Отправить в ${service}`,
  shareText: (program: string) => `Присоединяйтесь к программе «${program}» и получите бонусы:`,
  pendingHeading: 'Бонусы ждут подтверждения',
  pendingText: (p: number) => `${points('ru', p)} ждут подтверждения и пока не списываются.`,
  pendingVerify: (phone: string) => `Подтвердите номер ${phone} кодом из SMS — и бонусы сразу станут доступны. Или они станут доступны после первой покупки на кассе.`,
  pendingAfterPurchase: 'Они станут доступны после вашей первой покупки на кассе.',
  sendCode: 'Получить код по SMS',
  verifiedNotice: 'Телефон подтверждён. Карта ваша.',
  alreadyVerify: 'Это ваш номер? Подтвердите его кодом из SMS — и карта перейдёт к вам, а чужая копия перестанет работать.',
  codeTitle: 'Введите код из SMS',
  codeSent: (phone: string, minutes: number) => `Мы отправили 6-значный код на номер ${phone}. Код действует ${minutes} минут.`,
  code: 'Код из SMS',
  codeHint: '6 цифр',
  confirm: 'Подтвердить',
  resend: 'Отправить код ещё раз',
  smsText: (code: string, program: string) => `Код ${code} для карты «${program}». Никому его не сообщайте.`,
  verifyErrors: {
    verification_code_wrong: (left: number) => `Код не подходит. Осталось попыток: ${left}.`,
    verification_locked: 'Слишком много неверных попыток. Запросите новый код.',
    verification_expired: 'Код устарел или не запрошен. Запросите новый код.',
    verification_send_limit: (seconds: number) => `Код уже отправлен недавно. Новый можно запросить через ${Math.ceil(seconds / 60)} мин.`,
    sms_unavailable: 'Не удалось отправить SMS. Попробуйте позже.',
    verification_unavailable: 'Подтверждение по SMS сейчас недоступно. Бонусы станут доступны после первой покупки на кассе.',
    card_not_found: 'С этим номером нет карты. Зарегистрируйтесь на странице программы.',
    invalid_phone: 'Номер не похож на телефонный.',
  },
};

type Messages = typeof ru;

const en: Messages = {
  langName: 'English',
  switchTo: 'Перейти на русский',
  joinTitle: (program) => `${program} card`,
  joinLead: 'Fill in the form and the card goes to Apple Wallet or Google Wallet on your phone.',
  welcomeBonus: (p) => `${points('en', p)} welcome bonus`,
  referralBonus: (p, later) =>
    later ? `${points('en', p)} more from your friend after your first purchase` : `${points('en', p)} more from the friend who invited you`,
  invited: 'A friend invited you',
  name: 'Name',
  phone: 'Phone',
  phoneHint: 'For example, +7 916 123-45-67',
  email: 'Email',
  birthday: 'Birthday',
  optional: 'optional',
  consentHeading: 'Marketing consent',
  defaultConsent: (program) =>
    `I agree to receive news and personal offers from ${program} in Apple Wallet, Google Wallet, by SMS and email. I can withdraw this consent at any time.`,
  terms: 'Programme terms',
  submit: 'Get the card',
  honeypot: 'Leave this field empty',
  errorsHeading: 'Please check the form',
  errors: {
    nameRequired: 'Enter your name',
    nameTooLong: 'The name is too long (200 characters at most)',
    phoneRequired: 'Enter your phone number',
    phoneInvalid: 'This does not look like a phone number. Enter it in full, e.g. +7 916 123-45-67',
    emailInvalid: 'This email address is not valid',
    birthdayInvalid: 'This birthday is not a valid date',
    botSuspected: 'We could not accept the form. Check your details and press “Get the card” again.',
  },
  alreadyTitle: 'This phone number already has a card',
  alreadyText: (program) =>
    `The number is already a member of ${program}; the welcome bonus is given only once. The card may already be in the Wallet app on your phone. If it is not, ask the cashier to find your card by phone number: they will show you a QR code to install it.`,
  backToForm: 'Back to the form',
  tooManyTitle: 'Too many attempts',
  tooManyText: 'Please wait a minute and try again.',
  notFoundTitle: 'Page not found',
  notFoundText: 'Check the link or the QR code.',
  cardTitle: (program) => `Your ${program} card`,
  hello: (name) => `Hello, ${name}!`,
  balance: 'Balance',
  tier: 'Tier',
  cardNumber: 'Card number',
  blocked: 'This card is blocked. Please ask the cashier.',
  addApple: 'Add to Apple Wallet',
  addGoogle: 'Add to Google Wallet',
  walletHeading: 'Add the card to your phone',
  scanOnPhone: 'Point your phone camera at this code to open the card on your phone.',
  pageQrLabel: 'QR code of the link to this page',
  barcodeHeading: 'Show this code at the till',
  barcodeLabel: (number) => `QR code of card ${number}`,
  pkpassLink: 'Download the card file (.pkpass) — for Android apps that open such files',
  referralHeading: 'Invite friends',
  referralText: (inviter, invitee) => `You get ${points('en', inviter)} and your friend gets ${points('en', invitee)}.`,
  referralLink: 'Your invitation link (select and copy it)',
  shareVia: (service) => `Share via ${service}`,
  shareText: (program) => `Join ${program} and get bonus points:`,
  pendingHeading: 'Bonus points waiting for confirmation',
  pendingText: (p) => `${points('en', p)} are waiting for confirmation and cannot be spent yet.`,
  pendingVerify: (phone) => `Confirm ${phone} with a code by SMS and they are yours at once. Otherwise they unlock after your first purchase at the till.`,
  pendingAfterPurchase: 'They unlock after your first purchase at the till.',
  sendCode: 'Send me a code by SMS',
  verifiedNotice: 'Phone confirmed. The card is yours.',
  alreadyVerify: 'Is this your number? Confirm it with a code by SMS: the card becomes yours and any other copy stops working.',
  codeTitle: 'Enter the code from the SMS',
  codeSent: (phone, minutes) => `We sent a 6-digit code to ${phone}. It is valid for ${minutes} minutes.`,
  code: 'Code from the SMS',
  codeHint: '6 digits',
  confirm: 'Confirm',
  resend: 'Send a new code',
  smsText: (code, program) => `${code} is your code for the ${program} card. Do not share it.`,
  verifyErrors: {
    verification_code_wrong: (left) => `That code is not right. Attempts left: ${left}.`,
    verification_locked: 'Too many wrong attempts. Ask for a new code.',
    verification_expired: 'The code has expired or was not requested. Ask for a new code.',
    verification_send_limit: (seconds) => `A code was sent recently. You can ask for a new one in ${Math.ceil(seconds / 60)} min.`,
    sms_unavailable: 'We could not send the SMS. Please try again later.',
    verification_unavailable: 'SMS confirmation is not available now. Your points unlock after your first purchase at the till.',
    card_not_found: 'There is no card with this number. Join on the programme page.',
    invalid_phone: 'This does not look like a phone number.',
  },
};

export const MESSAGES: Record<Lang, Messages> = { ru, en };
export type { Messages };
