import { count, formatCalendarDate, points, quote } from './format.js';
import type { StaffRole } from '../cabinet/auth.js';

/**
 * The Russian message catalogue: every text of the public pages, the cabinet's shared texts and
 * the automations' default push texts. `en.ts` has the same keys (the type checks it, and
 * test/unit/i18n-catalogue.test.ts renders every template for 0, 1, 2, 5, 11, 21 and 1,000).
 * Counted words go through `count`/`points` (Intl.PluralRules); names in quotes through `quote`.
 * A cabinet screen's own texts stay in its file (`texts({ru, en})`), checked by the same test.
 */
export const ru = {
  /**
   * Default push texts of the automations (src/campaigns/automations.ts). Placeholders, filled per
   * card (campaigns/message.ts): `{points}` a count with its word ("1 балл", "5 баллов"), `{date}`
   * a date as the language writes it, `{tier}` the tier's name. Worded so that no other word has
   * to agree with the count.
   */
  push: {
    birthday: 'С днём рождения! Дарим вам бонусные баллы',
    winback: 'Давно не виделись! Заходите — мы соскучились',
    expiryReminder: 'Успейте потратить до {date}: {points}. Потом баллы сгорят.',
    expired: 'Сгорело: {points}',
    tierUpgrade: 'Поздравляем! Ваш новый уровень: {tier}',
  },
  /**
   * The mechanic on the wallet cards (src/wallets: Apple pass fields, Google object modules).
   * Change messages carry `%@` (Apple shows no notification without it) with the value last, so
   * no word agrees with a number.
   */
  wallet: {
    discountLabel: 'Скидка',
    discountChange: 'Ваша скидка: %@',
    nextDiscountLabel: 'Следующий уровень',
    nextDiscount: (percent: string, money: string) => `Скидка ${percent} — осталось купить на ${money}`,
    topDiscount: 'У вас максимальная скидка',
    stampsLabel: 'Штампы',
    stampsChange: 'Штампы: %@',
    stampsValue: (stamps: number, perReward: number) => `${stamps} / ${perReward}`,
    rewardLabel: 'Награда',
    reward: (name: string, perReward: number) => `${name} — когда на карте ${count('ru', perReward, 'stamps')}`,
    stampsImage: (stamps: number, perReward: number) => `Собрано: ${stamps} из ${perReward}`,
  },
  /** Coupons on the pass and the Google object (src/coupons/display.ts). `until` is an ISO date-time. */
  coupons: {
    line: (title: string, code: string, until: string) => `${title} — код ${code}, действует до ${formatCalendarDate('ru', String(until))}`,
    latest: (title: string, code: string) => `${title} (код ${code})`,
    googleHeader: 'Ваши купоны',
  },
  /** Print materials (src/materials): posters, table tents, stickers. */
  materials: {
    headline: 'Карта постоянного покупателя — в вашем телефоне',
    offer: (bonus: number) => `${points('ru', bonus)} за вступление`,
    instruction: 'Наведите камеру телефона на код и добавьте карту в Wallet',
    footnote: 'Apple Wallet · Google Wallet · без приложений и пластика',
  },
  public: {
    langName: 'Русский',
    switchTo: 'Switch to English',
    joinTitle: (program: string) => `Карта ${quote('ru', program)}`,
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
      `Я согласен(на) получать от ${quote('ru', program)} новости и персональные предложения в Apple Wallet, Google Кошельке, по SMS и e-mail. Согласие можно отозвать в любой момент.`,
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
      `Номер уже зарегистрирован в программе ${quote('ru', program)}, повторный бонус не начисляется. Карта уже может быть в приложении Wallet на вашем телефоне. Если её там нет, попросите кассира найти карту по номеру телефона — он покажет QR-код для установки.`,
    backToForm: 'Вернуться к форме',
    tooManyTitle: 'Слишком много попыток',
    tooManyText: 'Подождите минуту и попробуйте снова.',
    notFoundTitle: 'Страница не найдена',
    notFoundText: 'Проверьте ссылку или QR-код.',
    cardTitle: (program: string) => `Ваша карта ${quote('ru', program)}`,
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
    shareText: (program: string) => `Присоединяйтесь к программе ${quote('ru', program)} и получите бонусы:`,
    pendingHeading: 'Бонусы ждут подтверждения',
    pendingText: (p: number) => `${points('ru', p)} ждут подтверждения и пока не списываются.`,
    pendingVerify: (phone: string) => `Подтвердите номер ${phone} кодом из SMS — и бонусы сразу станут доступны. Или они станут доступны после первой покупки на кассе.`,
    pendingAfterPurchase: 'Они станут доступны после вашей первой покупки на кассе.',
    sendCode: 'Получить код по SMS',
    verifiedNotice: 'Телефон подтверждён. Карта ваша.',
    alreadyVerify: 'Это ваш номер? Подтвердите его кодом из SMS — и карта перейдёт к вам, а чужая копия перестанет работать.',
    codeTitle: 'Введите код из SMS',
    codeSent: (phone: string, minutes: number) => `Мы отправили 6-значный код на номер ${phone}. Код действует ${count('ru', minutes, 'minutesAcc')}.`,
    code: 'Код из SMS',
    codeHint: '6 цифр',
    confirm: 'Подтвердить',
    resend: 'Отправить код ещё раз',
    smsText: (code: string, program: string) => `Код ${code} для карты ${quote('ru', program)}. Никому его не сообщайте.`,
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
  },
  cabinet: {
    langName: 'Русский',
    switchTo: 'Switch to English',
    skip: 'Перейти к содержимому',
    cabinet: 'Кабинет',
    mainNav: 'Разделы кабинета',
    menu: 'Меню',
    navGroups: { till: 'Касса', marketing: 'Маркетинг', program: 'Программа', developers: 'Разработчикам' },
    signedInAs: (name: string, role: string) => `${name}, ${role}`,
    signOut: 'Выйти',
    nav: {
      home: 'Обзор',
      cashier: 'Касса',
      campaigns: 'Рассылки',
      segments: 'Сегменты',
      automations: 'Автоматизации',
      stats: 'Статистика',
      qr: 'QR-коды',
      settings: 'Настройки',
      design: 'Дизайн карты',
      staff: 'Сотрудники',
      keys: 'API-ключи',
      webhooks: 'Вебхуки',
      account: 'Профиль',
    },
    roles: { owner: 'владелец', marketer: 'маркетолог', cashier: 'кассир' } as Record<StaffRole, string>,
    save: 'Сохранить',
    saved: 'Сохранено.',
    cancel: 'Отмена',
    remove: 'Удалить',
    yes: 'да',
    no: 'нет',
    none: '—',
    optional: 'необязательно',
    errorsHeading: 'Проверьте форму',
    errorPrefix: 'Ошибка: ',
    showTable: 'Показать данные таблицей',
    copy: 'Копировать',
    copied: 'Скопировано',
    print: 'Печать',
    errors: {
      forbiddenTitle: 'Нет доступа',
      forbiddenText: 'Этот раздел недоступен для вашей роли. Если он нужен, попросите владельца изменить роль.',
      notFoundTitle: 'Не найдено',
      notFoundText: 'Такой страницы или записи нет.',
      csrfTitle: 'Форма устарела',
      csrfText: 'Страница была открыта слишком давно или в другом окне. Вернитесь назад, обновите страницу и отправьте форму ещё раз.',
      signedOutTitle: 'Сеанс завершён',
      signedOutText: 'Войдите снова, чтобы продолжить.',
      tooManyTitle: 'Слишком много попыток',
      tooManyText: 'Подождите немного и попробуйте снова.',
      serverTitle: 'Что-то пошло не так',
      serverText: 'Попробуйте ещё раз. Если ошибка повторяется, сообщите администратору.',
      backHome: 'На главную кабинета',
      signIn: 'Войти',
    },
  },
};

export type RuCatalogue = typeof ru;
