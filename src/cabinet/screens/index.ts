import type { Screen } from '../kit.js';
import { accountScreen } from './account.js';
import { automationsScreen } from './automations.js';
import { campaignsScreen } from './campaigns.js';
import { couponsScreen } from './coupons.js';
import { cashierScreen } from './cashier.js';
import { designScreen } from './design.js';
import { economicsScreen } from './economics.js';
import { homeScreen } from './home.js';
import { importsScreen } from './imports.js';
import { keysScreen } from './keys.js';
import { qrScreen } from './qr.js';
import { segmentsScreen } from './segments.js';
import { settingsScreen } from './settings.js';
import { signInScreen } from './sign-in.js';
import { staffScreen } from './staff.js';
import { statsScreen } from './stats.js';
import { webhooksScreen } from './webhooks.js';

/**
 * Every screen of the cabinet, in navigation order. To add one: write `screens/<name>.ts`
 * exporting a `Screen` (its routes, each with `config: { access }`, and its nav entry), then list
 * it here. See README, "The cabinet".
 */
export const SCREENS: Screen[] = [
  signInScreen,
  homeScreen,
  cashierScreen,
  campaignsScreen,
  segmentsScreen,
  automationsScreen,
  couponsScreen,
  statsScreen,
  economicsScreen,
  qrScreen,
  settingsScreen,
  designScreen,
  staffScreen,
  importsScreen,
  keysScreen,
  webhooksScreen,
  accountScreen,
];
