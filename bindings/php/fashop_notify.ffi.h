/* fashop-notify for PHP FFI: generated from include/fashop_notify.h by `make header`. */

typedef enum FashopNotifyStatus {
  FASHOP_NOTIFY_OK = 0,
  FASHOP_NOTIFY_INVALID_ARGUMENT = 1,
  FASHOP_NOTIFY_APP_NOT_CONFIGURED = 2,
  FASHOP_NOTIFY_MAPPING_ERROR = 3,
  FASHOP_NOTIFY_NO_PERMIT = 4,
  FASHOP_NOTIFY_WECHAT_ERROR = 5,
  FASHOP_NOTIFY_NETWORK_ERROR = 6,
  FASHOP_NOTIFY_UNCERTAIN = 7,
  FASHOP_NOTIFY_STORE_ERROR = 8,
  FASHOP_NOTIFY_INTERNAL = 9,
} FashopNotifyStatus;

const char *fashop_notify_version(void);

const char *fashop_notify_last_error(void);

void fashop_notify_string_free(char *s);

enum FashopNotifyStatus fashop_notify_configure(const char *config_json);

enum FashopNotifyStatus fashop_notify_register_app(const char *app_json);

enum FashopNotifyStatus fashop_notify_unregister_app(const char *appid);

enum FashopNotifyStatus fashop_notify_list_apps(char **out_json);

enum FashopNotifyStatus fashop_notify_store_health(char **out_json);

enum FashopNotifyStatus fashop_notify_add_permit(const char *appid, const char *permit_json);

enum FashopNotifyStatus fashop_notify_ledger_stats(const char *appid,
                                                   const char *openid_or_null,
                                                   char **out_json);

enum FashopNotifyStatus fashop_notify_ledger_purge(const char *appid, char **out_json);

enum FashopNotifyStatus fashop_notify_event_catalog(char **out_json);

enum FashopNotifyStatus fashop_notify_load_mappings(const char *appid, const char *mappings_json);

enum FashopNotifyStatus fashop_notify_get_mappings(const char *appid, char **out_json);

enum FashopNotifyStatus fashop_notify_render(const char *appid,
                                             const char *event,
                                             const char *payload_json,
                                             char **out_json);

enum FashopNotifyStatus fashop_notify_check_mappings(const char *appid,
                                                     const char *mappings_json,
                                                     const char *options_json,
                                                     char **out_json);

enum FashopNotifyStatus fashop_notify_keyword_types(char **out_json);

enum FashopNotifyStatus fashop_notify_metrics(const char *format, char **out_text);

enum FashopNotifyStatus fashop_notify_enqueue(const char *appid,
                                              const char *event,
                                              const char *payload_json,
                                              char **out_json);

enum FashopNotifyStatus fashop_notify_flush(const char *appid_or_null,
                                            uint32_t max_messages,
                                            char **out_json);

enum FashopNotifyStatus fashop_notify_outbox_stats(const char *appid_or_null, char **out_json);

enum FashopNotifyStatus fashop_notify_outbox_requeue(const char *appid, uint64_t id);

enum FashopNotifyStatus fashop_notify_outbox_drop(const char *appid, uint64_t id);

enum FashopNotifyStatus fashop_notify_card_definitions(char **out_json);

enum FashopNotifyStatus fashop_notify_card_status(const char *appid,
                                                  const char *query_json,
                                                  char **out_json);

enum FashopNotifyStatus fashop_notify_handle_push(const char *appid,
                                                  const char *method,
                                                  const char *query_string,
                                                  const char *body,
                                                  char **out_json);

enum FashopNotifyStatus fashop_notify_reach_report(const char *appid,
                                                   const char *query_json,
                                                   char **out_json);

enum FashopNotifyStatus fashop_notify_send(const char *appid,
                                           const char *event,
                                           const char *payload_json,
                                           char **out_json);

enum FashopNotifyStatus fashop_notify_access_token(const char *appid, char **out_token);

enum FashopNotifyStatus fashop_notify_set_access_token(const char *appid,
                                                       const char *token,
                                                       int64_t expires_in_secs);

enum FashopNotifyStatus fashop_notify_invalidate_token(const char *appid, const char *token);

enum FashopNotifyStatus fashop_notify_call_api(const char *appid,
                                               const char *method,
                                               const char *path,
                                               const char *body_json_or_null,
                                               char **out_json);

enum FashopNotifyStatus fashop_notify_api_quota(const char *appid,
                                                const char *cgi_path_or_null,
                                                char **out_json);

