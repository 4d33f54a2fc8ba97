export {
  loadAdminConsole,
  ADMIN_CONSOLE_BASE_PATH,
  ADMIN_CONSOLE_CONTENT_SECURITY_POLICY,
  ADMIN_CONSOLE_SECURITY_HEADERS,
  type AdminConsole,
  type AdminConsoleFile,
  type LoadAdminConsoleOptions,
} from './console-files.js';
