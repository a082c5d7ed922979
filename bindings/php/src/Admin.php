<?php
declare(strict_types=1);

namespace FaShop\Notify;

use FaShop\Notify\Admin\AdminError;
use FaShop\Notify\Admin\ChineseTexts;
use FaShop\Notify\Admin\LibraryTemplateCheck;
use FaShop\Notify\Admin\MappingStore;
use FaShop\Notify\Admin\MappingSuggester;
use FaShop\Notify\Admin\Reasons;
use FaShop\Notify\Admin\StoreUnavailable;
use FaShop\Notify\Admin\TemplateCheck;
use FaShop\Notify\Admin\TemplateList;

/**
 * The shop admin's notification screens as framework-agnostic handlers: plain
 * arrays in, `['ok' => true, 'data' => …]` or `['ok' => false, 'error' => ['code', 'message', …]]`
 * out, with the stable codes of AdminError. FaShop's admin controllers and the
 * bundled front controller (admin/index.php) call the same methods.
 *
 * One Admin serves one mini program (`$appid`, '' when the shop has not set one
 * up). The mapping document lives in a MappingStore; every save is validated by
 * the library (loadMappings, on a throw-away preview app so the live mapping is
 * untouched until the document is stored) and by the template check.
 */
final class Admin
{
    /** The shop notifications the admin configures, in the order FaShop lists them. */
    public const EVENTS = ['order_pay_success', 'order_pay_fail', 'order_cancel', 'order_refund_apply', 'order_delivered'];

    /** What to search WeChat's public library for, per event (its Chinese name, or the telling part of it). */
    public const LIBRARY_SEARCH = [
        'order_pay_success' => '支付成功',
        'order_pay_fail' => '支付失败',
        'order_cancel' => '取消',
        'order_refund_apply' => '退款',
        'order_delivered' => '发货',
    ];

    /** The page a notification opens: the order's detail in FaShop's mini program. */
    public const DETAIL_PAGE = '/pages/order/detail?id={order_id}';

    /**
     * wx.requestSubscribeMessage asks for at most 3 templates at once (WeChat's
     * requestSubscribeMessage page: "tmplIds … 一次最多可订阅3条"), so a request
     * reporting more is not one tap's result.
     */
    public const MAX_SUBSCRIBE_PER_REQUEST = 3;
    /**
     * The answers of wx.requestSubscribeMessage that grant one message: `accept`, and the
     * accept with a reminder style the buyer chose (`acceptWithAudio`, `acceptWithAlert`,
     * `acceptWithForcePush`; docs/spec/wechat.md), as the library reads the popup push.
     */
    public const ACCEPT_ANSWERS = ['accept', 'acceptWithAudio', 'acceptWithAlert', 'acceptWithForcePush'];
    /** Legacy form ids a page may report at once (a page batches its form submits). */
    public const MAX_FORM_IDS_PER_REQUEST = 10;
    /** What the developer tool and broken pages send instead of a form id. */
    public const MOCK_FORM_IDS = ['the formId is a mock one', 'undefined', 'null', ''];

    /** Library titles are read at most this many pages of 30 deep when searching. */
    private const TITLE_PAGES = 10;
    /** addtemplate's sceneDesc: "服务场景描述，15个字以内" (WeChat's addTemplate page). */
    private const SCENE_DESC_MAX = 15;
    /** Dead letters requeued by one "requeue all / by reason" request. */
    private const REQUEUE_MAX = 1000;
    /** The buyer the preview renders for (never sent). */
    private const PREVIEW_TOUSER = 'o-admin-preview';
    private const JSON = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR;

    private TemplateCheck $check;
    /** @var (callable(string): ?array<string,mixed>)|null */
    private $orderFields;
    /** @var array<string,array<string,mixed>>|null */
    private ?array $templates = null;
    /** @var array<string,array<string,mixed>>|null */
    private ?array $catalog = null;
    private bool $registered = false;

    /**
     * @param string $appid the mini program's appid (fa_setting `wechat`.mini_app_id), '' when not set up
     * @param (callable(string): ?array<string,mixed>)|null $orderFields an order's event fields by order id (null: unknown order), for previews of real orders
     */
    public function __construct(
        private Notifier $notifier,
        private MappingStore $store,
        private string $appid,
        ?TemplateCheck $check = null,
        ?callable $orderFields = null,
    ) {
        $this->check = $check ?? new LibraryTemplateCheck($notifier);
        $this->orderFields = $orderFields;
    }

    /** The HTTP status that fits a handler's result. */
    public static function httpStatus(array $result): int
    {
        return ($result['ok'] ?? false) ? 200 : AdminError::httpStatus((string) ($result['error']['code'] ?? AdminError::INTERNAL));
    }

    // --- templates ---------------------------------------------------------------

    /** The mini program's subscribe templates with their keywords (name, label, type, limit). */
    public function templates(): array
    {
        return $this->run(fn () => ['templates' => array_values($this->templateList(true))]);
    }

    /** One template, with the events that use it. */
    public function template(string $templateId): array
    {
        return $this->run(function () use ($templateId) {
            $t = $this->knownTemplate($templateId);
            $usedBy = [];
            foreach ($this->document()['events'] as $event => $m) {
                if (($m['template_id'] ?? null) === $templateId) {
                    $usedBy[] = $event;
                }
            }
            return $t + ['used_by' => $usedBy];
        });
    }

    /** The service card definitions, for the editor's 服务卡片 choice. */
    public function cards(): array
    {
        return $this->run(fn () => ['cards' => $this->notifier->cardDefinitions()['cards'] ?? []]);
    }

    /** The keyword types with their rules (limit, allowed characters), for the editor's legend. */
    public function keywordTypes(): array
    {
        return $this->run(function () {
            $types = $this->check->keywordTypes();
            return ['available' => $types !== null, 'types' => $types ?? []];
        });
    }

    // --- events and mappings -------------------------------------------------------

    /** The shop notifications with their state: unmapped, enabled, disabled, or template_missing. */
    public function events(): array
    {
        return $this->run(function () {
            $doc = $this->document();
            $templates = null;
            $templatesError = null;
            if ($this->appid !== '') {
                try {
                    $templates = $this->templateList(true);
                } catch (\Throwable $e) {
                    $templatesError = $this->errorOf($e)->toResult()['error'];
                }
            }
            $events = [];
            foreach (self::EVENTS as $event) {
                $m = $doc['events'][$event] ?? null;
                $state = 'unmapped';
                $title = null;
                if ($m !== null) {
                    $state = ($m['enabled'] ?? true) ? 'enabled' : 'disabled';
                    $title = isset($m['template_id']) ? ($templates[$m['template_id']]['title'] ?? null) : null;
                    if ($templates !== null && isset($m['template_id']) && ($m['kind'] ?? 'subscribe') === 'subscribe' && !isset($templates[$m['template_id']])) {
                        $state = 'template_missing';
                    }
                }
                $events[] = [
                    'event' => $event,
                    'label' => $this->catalogEvent($event)['label'],
                    'state' => $state,
                    'template_id' => $m['template_id'] ?? null,
                    'template_title' => $title,
                    // 服务卡片: the card type and status the event moves the order's card to.
                    'channel' => $m['channel'] ?? 'subscribe',
                    'card' => isset($m['card']) ? ['notify_type' => $m['card']['notify_type'] ?? null, 'status' => $m['card']['status'] ?? null] : null,
                ];
            }
            return ['appid' => $this->appid, 'configured' => $this->appid !== '', 'events' => $events, 'templates_error' => $templatesError];
        });
    }

    /** A notification's detail: the fields it can fill (with labels and examples), its page, its saved mapping. */
    public function event(string $event): array
    {
        return $this->run(function () use ($event) {
            $c = $this->catalogEvent($event);
            return [
                'event' => $event,
                'label' => $c['label'],
                'fields' => $c['fields'],
                'page' => self::DETAIL_PAGE,
                'library_search' => self::LIBRARY_SEARCH[$event],
                'mapping' => $this->document()['events'][$event] ?? null,
            ];
        });
    }

    /**
     * Saves one event's mapping into the document: `template_id`, `data` (keyword
     * => placeholder text), optional `page`, `enabled`, `kind`, `overflow`,
     * `miniprogram_state`, `lang`, `emphasis_keyword`. The merged document is
     * validated by the library and checked against the template before it is
     * stored; then the library uses it at once.
     *
     * @param array<string,mixed> $input
     */
    public function saveMapping(string $event, array $input): array
    {
        return $this->run(function () use ($event, $input) {
            $this->catalogEvent($event);
            $mapping = $this->mappingFromInput($input);
            if (isset($mapping['template_id']) && ($mapping['kind'] ?? 'subscribe') === 'subscribe') {
                $this->knownTemplate($mapping['template_id']);
            }
            $warnings = [];
            $saved = $this->store->update(function (?string $current) use ($event, $mapping, &$warnings) {
                $doc = $this->decodeDocument($current);
                $doc['events'][$event] = $mapping;
                $json = $this->encode($doc);
                $warnings = $this->validate($json, $event);
                return $json;
            }, $this->titles());
            $this->notifier->loadMappings($this->appid, $saved);
            return [
                'event' => $event,
                'mapping' => $this->decodeDocument($saved)['events'][$event],
                'warnings' => ChineseTexts::findings($warnings),
                'check' => ['available' => $this->checkAvailable()],
            ];
        });
    }

    /** Removes one event's mapping (the event is no longer sent); removing an unmapped event is fine. */
    public function removeMapping(string $event): array
    {
        return $this->run(function () use ($event) {
            $this->catalogEvent($event);
            $removed = false;
            $saved = $this->store->update(function (?string $current) use ($event, &$removed) {
                $doc = $this->decodeDocument($current);
                $removed = isset($doc['events'][$event]);
                unset($doc['events'][$event]);
                $json = $this->encode($doc);
                $this->validate($json, null);
                return $json;
            }, $this->titles());
            if ($this->appid !== '') {
                $this->notifier->loadMappings($this->appid, $saved);
            }
            return ['event' => $event, 'removed' => $removed];
        });
    }

    /** A suggested mapping of the template's keywords to the event's fields, with the reason for each. */
    public function suggestMapping(string $event, string $templateId): array
    {
        return $this->run(function () use ($event, $templateId) {
            $c = $this->catalogEvent($event);
            $t = $this->knownTemplate($templateId);
            $s = MappingSuggester::suggest($t['keywords'], $c['fields']);
            return [
                'event' => $event,
                'mapping' => ['template_id' => $templateId, 'page' => self::DETAIL_PAGE, 'data' => $s['data']],
                'keywords' => $s['keywords'],
            ];
        });
    }

    /**
     * The message an event would send, without sending: `mapping` (a draft of the
     * event's mapping; default the saved one) rendered with `fields` (default the
     * catalog's examples) or a real order's (`order_id`, through the order source).
     * Each keyword gets a verdict: ok, truncated (shortened to fit its type), or
     * error with the reason; `problems` lists the document's and the template's.
     *
     * @param array<string,mixed> $input
     */
    public function preview(string $event, array $input = []): array
    {
        return $this->run(function () use ($event, $input) {
            $c = $this->catalogEvent($event);
            if (isset($input['mapping'])) {
                if (!is_array($input['mapping'])) {
                    throw new AdminError(AdminError::INVALID_REQUEST, 'mapping must be an object');
                }
                $draft = $this->mappingFromInput($input['mapping']);
            } else {
                $draft = $this->document()['events'][$event] ?? null;
                if ($draft === null) {
                    throw new AdminError(AdminError::NOT_MAPPED, "$event has no saved mapping: send a draft mapping to preview");
                }
            }
            $fields = $this->previewFields($c, $input);
            $template = null;
            if (isset($draft['template_id']) && ($draft['kind'] ?? 'subscribe') === 'subscribe') {
                $template = $this->templateList(false)[$draft['template_id']] ?? null;
            }
            $doc = $this->document();
            $doc['events'][$event] = $draft;
            $json = $this->encode($doc);

            $problems = [];
            $body = null;
            try {
                $body = $this->withPreviewApp(function (string $shadow) use ($json, $event, $fields) {
                    $this->notifier->loadMappings($shadow, $json);
                    return $this->notifier->render($shadow, $event, ['touser' => self::PREVIEW_TOUSER, 'fields' => $fields]);
                });
            } catch (Exception\MappingException $e) {
                $problems = self::problemsOf($e->getMessage());
            }
            $checked = $this->checkDocument($json);
            foreach ($checked ?? [] as $p) {
                // A document that does not load is reported by the library above already.
                if (self::concerns($p['path'], $event) && ($p['kind'] ?? '') !== 'invalid_mapping') {
                    $problems[] = $p;
                }
            }
            $keywords = [];
            $labels = [];
            foreach ($template['keywords'] ?? [] as $kw) {
                $labels[$kw['name']] = $kw;
            }
            foreach ($draft['data'] ?? [] as $name => $text) {
                $keywords[] = ['name' => $name, 'label' => $labels[$name]['label'] ?? null, 'type' => $labels[$name]['type'] ?? TemplateList::prefix($name), 'placeholder' => $text]
                    + $this->verdict($event, $draft, $name, $text, $fields);
            }
            return [
                'event' => $event,
                'valid' => $body !== null && !array_filter($problems, fn ($p) => ($p['severity'] ?? 'error') === 'error'),
                'fields' => $fields,
                'body' => $body,
                'keywords' => ChineseTexts::findings($keywords),
                'problems' => ChineseTexts::findings($problems),
                'check' => ['available' => $checked !== null],
                'card' => self::cardPreview($draft, $body),
            ];
        });
    }

    /**
     * What a card-only event's preview shows of the card: its type, the status the
     * event moves it to and the fields WeChat gets (`content_json`); null for a
     * subscribe message (a "both" event previews its message; its card is in `mapping`).
     *
     * @param array<string,mixed> $draft
     * @param array<string,mixed>|string|null $body the rendered request
     * @return array<string,mixed>|null
     */
    private static function cardPreview(array $draft, array|string|null $body): ?array
    {
        if (!isset($draft['card']) || $body === null) {
            return null;
        }
        $request = is_string($body) ? json_decode($body, true) : $body;
        $content = is_array($request) && isset($request['content_json']) ? json_decode((string) $request['content_json'], true) : null;
        return [
            'notify_type' => $draft['card']['notify_type'] ?? null,
            'status' => $draft['card']['status'] ?? null,
            'fields' => is_array($content) ? $content : null,
        ];
    }

    // --- what the mini program collects ---------------------------------------------

    /**
     * The mini program's report after wx.requestSubscribeMessage (`subscribe`: its
     * `res` object, template id => accept | reject | ban | filter) and its legacy
     * form ids (`form_ids`). Records an accepted template only when an event of
     * this app is mapped to it, at most MAX_SUBSCRIBE_PER_REQUEST per request, and
     * form ids except the developer tool's mock ones. `$openid` comes from the
     * buyer's session (fa_user_open.mini_openid), never from the request body.
     *
     * @param array<string,mixed> $input
     */
    public function collectGrants(string $openid, array $input): array
    {
        return $this->run(function () use ($openid, $input) {
            $this->requireApp();
            if ($openid === '') {
                throw new AdminError(AdminError::INVALID_REQUEST, 'openid must not be empty (it comes from the buyer session)');
            }
            $subscribe = $input['subscribe'] ?? [];
            $formIds = $input['form_ids'] ?? [];
            if (!is_array($subscribe) || !is_array($formIds) || !array_is_list($formIds)) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'subscribe must be an object of template id => answer, form_ids a list');
            }
            $mapped = [];
            foreach ($this->document()['events'] as $m) {
                if (($m['kind'] ?? 'subscribe') === 'subscribe') {
                    $mapped[$m['template_id']] = true;
                }
            }
            $accepted = [];
            $ignored = [];
            foreach ($subscribe as $templateId => $answer) {
                $templateId = (string) $templateId;
                if ($templateId === 'errMsg') {
                    continue;
                }
                if (!in_array($answer, self::ACCEPT_ANSWERS, true)) {
                    continue; // reject, ban, filter: no right to send
                }
                if (!isset($mapped[$templateId])) {
                    $ignored[] = ['template_id' => $templateId, 'reason' => 'not_mapped'];
                } elseif (count($accepted) >= self::MAX_SUBSCRIBE_PER_REQUEST) {
                    $ignored[] = ['template_id' => $templateId, 'reason' => 'over_limit'];
                } else {
                    $this->notifier->addPermit($this->appid, ['openid' => $openid, 'kind' => 'subscribe', 'template_id' => $templateId]);
                    $accepted[] = $templateId;
                }
            }
            $recorded = 0;
            foreach ($formIds as $formId) {
                $formId = is_string($formId) ? $formId : '';
                if (in_array(trim($formId), self::MOCK_FORM_IDS, true)) {
                    $ignored[] = ['form_id' => $formId, 'reason' => 'mock'];
                } elseif ($recorded >= self::MAX_FORM_IDS_PER_REQUEST) {
                    $ignored[] = ['form_id' => $formId, 'reason' => 'over_limit'];
                } else {
                    try {
                        $this->notifier->addPermit($this->appid, ['openid' => $openid, 'kind' => 'form_id', 'value' => $formId]);
                        $recorded++;
                    } catch (Exception\InvalidArgumentException $e) {
                        $ignored[] = ['form_id' => $formId, 'reason' => 'invalid', 'message' => $e->getMessage()];
                    }
                }
            }
            return ['accepted' => $accepted, 'form_ids' => $recorded, 'ignored' => $ignored];
        });
    }

    /**
     * The subscribe templates the mini program should ask for, for these events: the
     * enabled subscribe mappings' template ids, each once, in the events' order (what the
     * mini program's package fetches before a tap, GrantEndpoint's `templates` route).
     *
     * @param list<string> $events
     */
    public function askTemplates(array $events): array
    {
        return $this->run(function () use ($events) {
            $this->requireApp();
            $doc = $this->document()['events'];
            $ids = [];
            foreach ($events as $event) {
                $this->catalogEvent($event);
                $m = $doc[$event] ?? null;
                if ($m === null || ($m['kind'] ?? 'subscribe') !== 'subscribe' || ($m['enabled'] ?? true) === false) {
                    continue;
                }
                $ids[$m['template_id']] ??= $event;
            }
            return ['template_ids' => array_keys($ids), 'events' => $ids];
        });
    }

    // --- WeChat's public template library -------------------------------------------------

    /** The mini program's categories (getcategory). */
    public function libraryCategories(): array
    {
        return $this->run(fn () => ['categories' => $this->wechat('GET', '/wxaapi/newtmpl/getcategory')['data'] ?? []]);
    }

    /**
     * Library titles of categories (getpubtemplatetitles), paged: `ids` (category
     * ids; default the mini program's), `start`, `limit` (1 to 30), and `keyword`
     * to keep only titles containing it (searched over the first pages).
     *
     * @param array<string,mixed> $query
     */
    public function libraryTitles(array $query): array
    {
        return $this->run(function () use ($query) {
            $start = self::intIn($query, 'start', 0, 0, PHP_INT_MAX);
            $limit = self::intIn($query, 'limit', 30, 1, 30);
            $keyword = trim((string) ($query['keyword'] ?? ''));
            $ids = $this->categoryIds($query['ids'] ?? null);
            if ($keyword === '') {
                $a = $this->wechat('GET', '/wxaapi/newtmpl/getpubtemplatetitles?' . http_build_query(['ids' => implode(',', $ids), 'start' => $start, 'limit' => $limit]));
                return ['count' => (int) ($a['count'] ?? 0), 'start' => $start, 'titles' => $a['data'] ?? []];
            }
            $found = $this->searchTitles($ids, $keyword);
            return ['count' => count($found), 'start' => $start, 'keyword' => $keyword, 'titles' => array_slice($found, $start, $limit)];
        });
    }

    /** The library titles that fit an event, found by its Chinese name (支付成功, 发货, 退款, 取消 …). */
    public function librarySuggestions(string $event): array
    {
        return $this->run(function () use ($event) {
            $this->catalogEvent($event);
            $keyword = self::LIBRARY_SEARCH[$event];
            return ['event' => $event, 'keyword' => $keyword, 'titles' => $this->searchTitles($this->categoryIds(null), $keyword)];
        });
    }

    /** A library title's keywords (getpubtemplatekeywords): kid, name, example, rule. */
    public function libraryKeywords(int|string $tid): array
    {
        return $this->run(function () use ($tid) {
            if (!preg_match('/^[1-9]\d{0,9}$/', (string) $tid)) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'tid must be a library title id (a positive number)');
            }
            $a = $this->wechat('GET', '/wxaapi/newtmpl/getpubtemplatekeywords?tid=' . $tid, null, [200014 => AdminError::UNKNOWN_TEMPLATE]);
            return ['tid' => (int) $tid, 'keywords' => $a['data'] ?? []];
        });
    }

    /**
     * Adds a template from the library (addtemplate): `tid`, `kid_list` (the
     * chosen keywords in the order the message shows them) and `scene_desc`
     * (the service scene, at most 15 characters).
     *
     * @param array<string,mixed> $input
     */
    public function createTemplate(array $input): array
    {
        return $this->run(function () use ($input) {
            $tid = $input['tid'] ?? null;
            if (!is_int($tid) && !(is_string($tid) && preg_match('/^[1-9]\d{0,9}$/', $tid))) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'tid must be a library title id');
            }
            $kids = $input['kid_list'] ?? null;
            if (!is_array($kids) || !array_is_list($kids) || $kids === [] || array_filter($kids, fn ($k) => !is_int($k) || $k < 1)) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'kid_list must be a list of keyword ids (kid) in the order to show them');
            }
            if (count($kids) > 5 || count(array_unique($kids)) !== count($kids)) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'kid_list takes at most 5 distinct keywords');
            }
            $scene = trim((string) ($input['scene_desc'] ?? ''));
            if ($scene === '' || self::chars($scene) > self::SCENE_DESC_MAX) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'scene_desc must be 1 to ' . self::SCENE_DESC_MAX . ' characters');
            }
            $a = $this->wechat('POST', '/wxaapi/newtmpl/addtemplate', ['tid' => (string) $tid, 'kidList' => $kids, 'sceneDesc' => $scene], [200014 => AdminError::UNKNOWN_TEMPLATE, 200020 => AdminError::INVALID_REQUEST]);
            $this->templates = null;
            $id = (string) ($a['priTmplId'] ?? '');
            return ['template_id' => $id, 'template' => $this->templateList(true)[$id] ?? null];
        });
    }

    /** Deletes one of the mini program's templates (deltemplate), unless an event is mapped to it. */
    public function deleteTemplate(string $templateId): array
    {
        return $this->run(function () use ($templateId) {
            $this->requireApp();
            foreach ($this->document()['events'] as $event => $m) {
                if (($m['template_id'] ?? null) === $templateId) {
                    throw new AdminError(AdminError::TEMPLATE_IN_USE, "$event is mapped to template $templateId: map it to another template or remove its mapping first", [], ['event' => $event]);
                }
            }
            $this->wechat('POST', '/wxaapi/newtmpl/deltemplate', ['priTmplId' => $templateId], [20001 => AdminError::UNKNOWN_TEMPLATE, 40037 => AdminError::UNKNOWN_TEMPLATE]);
            $this->templates = null;
            return ['template_id' => $templateId, 'deleted' => true];
        });
    }

    // --- reach ------------------------------------------------------------------------------

    /**
     * The 送达 panel: per mapped event, each day of `from`..`to` (China days,
     * YYYY-MM-DD; the last 7 days by default) sent vs not reached with the reasons
     * in Chinese (Reasons), the reach rate, and the grant stock per template with a
     * hint when fewer buyers hold a grant than the event's recent sends.
     *
     * @param array<string,mixed> $query
     */
    public function reach(array $query = []): array
    {
        return $this->run(function () use ($query) {
            $this->requireApp();
            $today = (new \DateTimeImmutable('now', new \DateTimeZone('Asia/Shanghai')));
            $from = (string) ($query['from'] ?? $today->modify('-6 days')->format('Y-m-d'));
            $to = (string) ($query['to'] ?? $today->format('Y-m-d'));
            $r = $this->notifier->reachReport($this->appid, $from, $to);
            $events = [];
            foreach (self::EVENTS as $event) {
                $e = $r['events'][$event] ?? null;
                if ($e !== null) {
                    $events[] = ['event' => $event, 'label' => $this->catalogEvent($event)['label'],
                        'days' => array_map(fn (array $d) => self::reachDay($d), $e['days']), 'total' => self::reachDay($e['total'])];
                }
            }
            $titles = $this->titles();
            $grants = array_map(fn (array $g) => $g + ['title' => $titles[$g['template_id']] ?? null] + self::stockHint($g, $events), $r['grants']);
            return ['from' => $r['from'], 'to' => $r['to'], 'today' => $r['today'], 'keep_days' => $r['keep_days'], 'events' => $events, 'grants' => $grants];
        });
    }

    /** One day's (or the range's) counts with the reasons not reached, in Chinese. */
    private static function reachDay(array $d): array
    {
        $reasons = [];
        foreach (['no_permit' => 0, 'refused' => 43101, 'uncertain' => 0] as $outcome => $code) {
            if ($d[$outcome] > 0) {
                $reasons[] = ['outcome' => $outcome, 'count' => $d[$outcome]] + Reasons::of($outcome, $code);
            }
        }
        foreach ($d['failed_by_errcode'] as $code => $n) {
            $reasons[] = ['outcome' => 'failed', 'count' => $n] + Reasons::of('failed', (int) $code);
        }
        return ['day' => $d['day'] ?? null, 'sent' => $d['sent'], 'not_reached' => $d['not_reached'], 'queued' => $d['queued'],
            'reach_rate' => $d['reach_rate'], 'reasons' => $reasons];
    }

    /**
     * Low stock: fewer buyers hold a grant for the template than its events were sent
     * to in the range (the next days will likely look the same).
     *
     * @param list<array<string,mixed>> $events
     */
    private static function stockHint(array $grant, array $events): array
    {
        $wanted = 0;
        $labels = [];
        foreach ($events as $e) {
            if (in_array($e['event'], $grant['events'], true)) {
                $wanted += $e['total']['sent'] + $e['total']['not_reached'] + $e['total']['queued'];
                $labels[] = $e['label'];
            }
        }
        $low = $wanted > 0 && $grant['holders'] < $wanted;
        $hint = $low ? sprintf('所选时段发出「%s」%d 次，仅 %d 位买家允许这条通知：请在小程序支付后请求订阅', implode('、', $labels), $wanted, $grant['holders']) : null;
        return ['low' => $low, 'hint' => $hint, 'wanted' => $wanted];
    }

    // --- outbox -----------------------------------------------------------------------------

    /** The outbox's counts, its dead letters (with their reason) and the reasons counted. */
    public function outbox(): array
    {
        return $this->run(function () {
            $this->requireApp();
            $s = $this->notifier->outboxStats($this->appid);
            $reasons = [];
            foreach ($s['dead_letters'] as $i => $d) {
                $why = Reasons::ofLetter((string) $d['state'], (int) $d['errcode'], (string) $d['errmsg']);
                $s['dead_letters'][$i]['reason_zh'] = $why['text'];
                $key = (string) $d['errcode'];
                $reasons[$key] ??= ['errcode' => $d['errcode'], 'errmsg' => $d['errmsg'], 'reason_zh' => $why['text'], 'count' => 0];
                $reasons[$key]['count']++;
            }
            return [
                'counts' => array_intersect_key($s, array_flip(['pending', 'due', 'in_flight', 'dead', 'uncertain', 'sent'])),
                'by_event' => $s['by_event'],
                'dead_letters' => $s['dead_letters'],
                'reasons' => array_values($reasons),
            ];
        });
    }

    /**
     * The subscribe send's daily quota (openapi/quota/get): daily_limit, used,
     * remain, so the shop sees a 45009 coming. Its own route: a WeChat failure
     * here leaves the outbox panel working.
     */
    public function outboxQuota(): array
    {
        return $this->run(function () {
            $this->requireApp();
            return $this->notifier->apiQuota($this->appid);
        });
    }

    /**
     * Sends dead letters again at the next flush: `id` (one, dead or uncertain),
     * `errcode` (every dead letter that failed with it), or `all` (every dead
     * letter; uncertain ones are left alone, they may have reached the buyer).
     *
     * @param array<string,mixed> $input
     */
    public function outboxRequeue(array $input): array
    {
        return $this->run(function () use ($input) {
            $this->requireApp();
            if (isset($input['id'])) {
                $id = self::messageId($input['id']);
                $this->onMessage(fn () => $this->notifier->outboxRequeue($this->appid, $id), $id);
                return ['requeued' => [$id]];
            }
            $all = ($input['all'] ?? false) === true;
            $errcode = $input['errcode'] ?? null;
            if (!$all && !is_int($errcode)) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'give id (one message), errcode (every dead letter with that reason) or all: true');
            }
            $requeued = [];
            $failed = [];
            // outboxStats lists the newest dead letters only: take them batch by batch.
            while (count($requeued) + count($failed) < self::REQUEUE_MAX) {
                $batch = array_filter(
                    $this->notifier->outboxStats($this->appid)['dead_letters'],
                    fn ($d) => $d['state'] === 'dead' && ($all || $d['errcode'] === $errcode) && !isset($failed[$d['id']])
                );
                if ($batch === []) {
                    break;
                }
                foreach ($batch as $d) {
                    try {
                        $this->notifier->outboxRequeue($this->appid, (int) $d['id']);
                        $requeued[] = (int) $d['id'];
                    } catch (Exception\InvalidArgumentException $e) {
                        $failed[$d['id']] = $e->getMessage(); // taken by a flush meanwhile
                    }
                }
            }
            return ['requeued' => $requeued, 'failed' => $failed];
        });
    }

    /** @param array<string,mixed> $input `id`: the dead, uncertain or not yet sent message to remove */
    public function outboxDrop(array $input): array
    {
        return $this->run(function () use ($input) {
            $this->requireApp();
            $id = self::messageId($input['id'] ?? null);
            $this->onMessage(fn () => $this->notifier->outboxDrop($this->appid, $id), $id);
            return ['dropped' => $id];
        });
    }

    // --- inside -----------------------------------------------------------------------------

    /** Runs a handler: its answer, or the error it met as a stable code. */
    private function run(callable $handler): array
    {
        try {
            return ['ok' => true, 'data' => $handler()];
        } catch (\Throwable $e) {
            return $this->errorOf($e)->toResult();
        }
    }

    private function errorOf(\Throwable $e): AdminError
    {
        return match (true) {
            $e instanceof AdminError => $e,
            $e instanceof Exception\AppNotConfiguredException => new AdminError(AdminError::MINI_PROGRAM_NOT_CONFIGURED, 'the mini program is not configured: ' . $e->getMessage(), [], [], $e),
            $e instanceof Exception\MappingException => new AdminError(AdminError::INVALID_MAPPING, $e->getMessage(), self::problemsOf($e->getMessage()), [], $e),
            $e instanceof Exception\InvalidArgumentException => new AdminError(AdminError::INVALID_REQUEST, $e->getMessage(), [], [], $e),
            $e instanceof Exception\WeChatException => new AdminError(AdminError::WECHAT_ERROR, $e->getMessage(), [], ['errcode' => $e->getErrcode()], $e),
            $e instanceof Exception\NetworkException, $e instanceof Exception\UncertainDeliveryException => new AdminError(AdminError::WECHAT_UNREACHABLE, $e->getMessage(), [], [], $e),
            $e instanceof Exception\StoreException, $e instanceof StoreUnavailable => new AdminError(AdminError::STORE_ERROR, $e->getMessage(), [], [], $e),
            default => new AdminError(AdminError::INTERNAL, get_class($e) . ': ' . $e->getMessage(), [], [], $e),
        };
    }

    private function requireApp(): void
    {
        if ($this->appid === '') {
            throw new AdminError(AdminError::MINI_PROGRAM_NOT_CONFIGURED, 'the mini program is not configured: set its appid and secret in the WeChat settings first');
        }
        if (!$this->registered) {
            if (!in_array($this->appid, array_column($this->notifier->listApps(), 'appid'), true)) {
                throw new AdminError(AdminError::MINI_PROGRAM_NOT_CONFIGURED, "the mini program {$this->appid} is not registered with the library: set its appid and secret in the WeChat settings first");
            }
            $this->registered = true;
        }
    }

    /**
     * A WeChat call with the managed token; errcodes in `$codes` become those admin codes.
     *
     * @param array<string,mixed>|null $body
     * @param array<int,string> $codes
     */
    private function wechat(string $method, string $path, ?array $body = null, array $codes = []): array
    {
        $this->requireApp();
        try {
            return $this->notifier->callApi($this->appid, $method, $path, $body);
        } catch (Exception\WeChatException $e) {
            $code = $codes[$e->getErrcode()] ?? null;
            if ($code !== null) {
                throw new AdminError($code, $e->getMessage(), [], ['errcode' => $e->getErrcode()], $e);
            }
            throw $e;
        }
    }

    /** @return array<string,array<string,mixed>> the app's templates by id, read once per Admin unless `$fresh` */
    private function templateList(bool $fresh): array
    {
        if ($fresh || $this->templates === null) {
            $this->templates = TemplateList::fromAnswer($this->wechat('GET', '/wxaapi/newtmpl/gettemplate'), $this->check->keywordTypes());
        }
        return $this->templates;
    }

    /** @return array<string,mixed> */
    private function knownTemplate(string $templateId): array
    {
        $t = $this->templateList(false)[$templateId] ?? null;
        if ($t === null) {
            throw new AdminError(AdminError::UNKNOWN_TEMPLATE, "template $templateId is not among the mini program's templates", [], ['template_id' => $templateId]);
        }
        return $t;
    }

    /** @return array<string,string> template id => title, when the list can be read */
    private function titles(): array
    {
        try {
            return array_map(fn ($t) => $t['title'], $this->templateList(false));
        } catch (\Throwable) {
            return [];
        }
    }

    /** @return array{label:string,fields:list<array<string,mixed>>} */
    private function catalogEvent(string $event): array
    {
        if ($this->catalog === null) {
            $this->catalog = [];
            foreach ($this->notifier->eventCatalog()['events'] ?? [] as $e) {
                $this->catalog[$e['event']] = $e;
            }
        }
        if (!in_array($event, self::EVENTS, true) || !isset($this->catalog[$event])) {
            throw new AdminError(AdminError::UNKNOWN_EVENT, "unknown event \"$event\": the shop notifications are " . implode(', ', self::EVENTS), [], ['event' => $event]);
        }
        return $this->catalog[$event];
    }

    /** @return array{version:int,events:array<string,array<string,mixed>>} the saved document (an empty one before the first save) */
    private function document(): array
    {
        return $this->decodeDocument($this->store->load());
    }

    /** @return array{version:int,events:array<string,array<string,mixed>>} */
    private function decodeDocument(?string $json): array
    {
        if ($json === null || trim($json) === '') {
            return ['version' => 1, 'events' => []];
        }
        try {
            $doc = json_decode($json, true, 64, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new StoreUnavailable('the saved mapping document is not JSON: ' . $e->getMessage(), 0, $e);
        }
        if (!is_array($doc)) {
            throw new StoreUnavailable('the saved mapping document is not a JSON object');
        }
        $doc['version'] ??= 1;
        $doc['events'] = is_array($doc['events'] ?? null) ? $doc['events'] : [];
        return $doc;
    }

    /** @param array<string,mixed> $doc */
    private function encode(array $doc): string
    {
        if ($doc['events'] === []) {
            $doc['events'] = new \stdClass();
        }
        return json_encode($doc, self::JSON);
    }

    /**
     * An event mapping from the admin's input: known keys only, right types.
     *
     * @param array<string,mixed> $input
     * @return array<string,mixed>
     */
    private function mappingFromInput(array $input): array
    {
        $allowed = ['template_id', 'data', 'page', 'enabled', 'kind', 'overflow', 'miniprogram_state', 'lang', 'emphasis_keyword', 'channel', 'card'];
        $unknown = array_diff(array_keys($input), $allowed);
        if ($unknown !== []) {
            throw new AdminError(AdminError::INVALID_REQUEST, 'unknown mapping field ' . implode(', ', $unknown) . ' (known: ' . implode(', ', $allowed) . ')');
        }
        $channel = $input['channel'] ?? 'subscribe';
        if (!in_array($channel, ['subscribe', 'card', 'both'], true)) {
            throw new AdminError(AdminError::INVALID_REQUEST, 'channel must be subscribe, card (服务卡片) or both');
        }
        if ($channel !== 'subscribe' && (!is_array($input['card'] ?? null) || array_is_list($input['card']))) {
            throw new AdminError(AdminError::INVALID_REQUEST, 'card must be an object {notify_type, status, fields} for the channel ' . $channel);
        }
        if ($channel === 'card') {
            // 服务卡片 only: no template; the library checks the card with its paths.
            $m = ['channel' => 'card', 'card' => $input['card']];
            if (isset($input['enabled'])) {
                if (!is_bool($input['enabled'])) {
                    throw new AdminError(AdminError::INVALID_REQUEST, 'enabled must be true or false');
                }
                $m['enabled'] = $input['enabled'];
            }
            return $m;
        }
        $id = $input['template_id'] ?? null;
        if (!is_string($id) || $id === '' || strlen($id) > 128) {
            throw new AdminError(AdminError::INVALID_REQUEST, 'template_id must be a template id');
        }
        $data = $input['data'] ?? null;
        if (!is_array($data) || $data === [] || array_is_list($data)) {
            throw new AdminError(AdminError::INVALID_REQUEST, 'data must be an object of template keyword => text with {field} placeholders');
        }
        foreach ($data as $k => $v) {
            if (!is_string($v)) {
                throw new AdminError(AdminError::INVALID_REQUEST, "data.$k must be a string");
            }
        }
        $m = ['template_id' => $id, 'page' => self::DETAIL_PAGE] + array_intersect_key($input, array_flip($allowed));
        if (isset($m['enabled']) && !is_bool($m['enabled'])) {
            throw new AdminError(AdminError::INVALID_REQUEST, 'enabled must be true or false');
        }
        foreach (['page', 'kind', 'overflow', 'miniprogram_state', 'lang', 'emphasis_keyword'] as $k) {
            if (isset($m[$k]) && !is_string($m[$k])) {
                throw new AdminError(AdminError::INVALID_REQUEST, "$k must be a string");
            }
        }
        return $m;
    }

    /**
     * Validates a whole document before it is stored: the library's rules (on the
     * preview app, so the live mapping stays as it is) and the template check.
     * Check problems of `$event` (or of the document as a whole) refuse it; those of
     * other events come back as warnings.
     *
     * @return list<array<string,mixed>> warnings
     */
    private function validate(string $json, ?string $event): array
    {
        $this->withPreviewApp(fn (string $shadow) => $this->notifier->loadMappings($shadow, $json));
        $checked = $this->checkDocument($json);
        $errors = [];
        $warnings = [];
        foreach ($checked ?? [] as $p) {
            if ($p['severity'] === 'error' && ($event === null ? $p['path'] === '' || !str_starts_with($p['path'], 'events.') : self::concerns($p['path'], $event))) {
                $errors[] = $p;
            } else {
                $warnings[] = $p;
            }
        }
        if ($errors !== []) {
            throw new AdminError(AdminError::INVALID_MAPPING, 'the mapping does not fit the template: ' . implode('; ', array_map(fn ($p) => "{$p['path']}: {$p['message']}", $errors)), $errors);
        }
        return $warnings;
    }

    /**
     * The template check of a document. The library keeps the app's template list a
     * short while; a template it does not know may have been added since (here, or in
     * another worker), so that answer is checked again on a fresh list.
     *
     * @return list<array<string,mixed>>|null
     */
    private function checkDocument(string $json): ?array
    {
        if ($this->appid === '') {
            return null;
        }
        $checked = $this->check->check($this->appid, $json);
        if ($checked !== null && array_filter($checked, fn ($p) => ($p['kind'] ?? '') === 'unknown_template')) {
            $checked = $this->check->check($this->appid, $json, true);
        }
        return $checked;
    }

    /** Whether a problem's path concerns the event (or the whole document). */
    private static function concerns(string $path, string $event): bool
    {
        return $path === '' || !str_starts_with($path, 'events.') || $path === "events.$event" || str_starts_with($path, "events.$event.");
    }

    private function checkAvailable(): bool
    {
        return $this->check->keywordTypes() !== null;
    }

    /**
     * Runs `$use` with a throw-away app beside the shop's (external token mode, so
     * it can never fetch a token or send), for validating and rendering drafts
     * without touching the mapping the shop sends with.
     */
    private function withPreviewApp(callable $use): mixed
    {
        $shadow = substr($this->appid === '' ? 'unconfigured' : $this->appid, 0, 48) . '-admin-preview';
        $this->notifier->registerApp(['appid' => $shadow, 'token_mode' => 'external']);
        try {
            return $use($shadow);
        } catch (Exception\MappingException $e) {
            // The message names the document's app: the shop's, for the admin.
            throw Exception\MappingException::fromStatus(Status::MAPPING_ERROR, str_replace($shadow, $this->appid, $e->getMessage()), null, $e);
        } finally {
            $this->notifier->unregisterApp($shadow);
        }
    }

    /**
     * One keyword rendered on its own: ok, truncated (too long for its type and
     * shortened), or error.
     *
     * @param array<string,mixed> $draft
     * @param array<string,mixed> $fields
     * @return array{verdict:string,value:?string,message?:string}
     */
    private function verdict(string $event, array $draft, string $name, string $text, array $fields): array
    {
        $one = ['template_id' => $draft['template_id'], 'kind' => $draft['kind'] ?? 'subscribe', 'data' => [$name => $text]];
        $render = function (string $overflow) use ($event, $one, $name, $fields): ?string {
            $doc = ['version' => 1, 'events' => [$event => $one + ['overflow' => $overflow]]];
            return $this->withPreviewApp(function (string $shadow) use ($doc, $event, $name, $fields) {
                $this->notifier->loadMappings($shadow, $this->encode($doc));
                $body = $this->notifier->render($shadow, $event, ['touser' => self::PREVIEW_TOUSER, 'fields' => $fields]);
                return $body['data'][$name]['value'] ?? null;
            });
        };
        try {
            return ['verdict' => 'ok', 'value' => $render('error')];
        } catch (Exception\MappingException $strict) {
            if (($draft['overflow'] ?? 'truncate') === 'truncate') {
                try {
                    return ['verdict' => 'truncated', 'value' => $render('truncate'), 'message' => self::lastProblem($strict->getMessage())];
                } catch (Exception\MappingException) {
                    // not a length problem: report the strict message
                }
            }
            return ['verdict' => 'error', 'value' => null, 'message' => self::lastProblem($strict->getMessage())];
        }
    }

    /**
     * @param array{fields:list<array<string,mixed>>} $catalogEvent
     * @param array<string,mixed> $input
     * @return array<string,mixed>
     */
    private function previewFields(array $catalogEvent, array $input): array
    {
        if (isset($input['order_id'])) {
            if ($this->orderFields === null) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'this admin has no order source: preview with fields or the examples');
            }
            $orderId = (string) $input['order_id'];
            $fields = ($this->orderFields)($orderId);
            if (!is_array($fields)) {
                throw new AdminError(AdminError::UNKNOWN_ORDER, "no order $orderId", [], ['order_id' => $orderId]);
            }
            return $fields;
        }
        if (isset($input['fields'])) {
            if (!is_array($input['fields']) || (array_is_list($input['fields']) && $input['fields'] !== [])) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'fields must be an object of field => value');
            }
            return $input['fields'];
        }
        $fields = [];
        foreach ($catalogEvent['fields'] as $f) {
            $fields[$f['name']] = $f['example'];
        }
        return $fields;
    }

    /** @return list<int> the category ids asked for, else the mini program's own */
    private function categoryIds(mixed $ids): array
    {
        if ($ids === null || $ids === '' || $ids === []) {
            $ids = array_map(fn ($c) => $c['id'], $this->wechat('GET', '/wxaapi/newtmpl/getcategory')['data'] ?? []);
        } elseif (is_string($ids)) {
            $ids = explode(',', $ids);
        }
        if (!is_array($ids)) {
            throw new AdminError(AdminError::INVALID_REQUEST, 'ids must be category ids (a list or comma-separated)');
        }
        $out = [];
        foreach ($ids as $id) {
            if (!preg_match('/^[1-9]\d{0,9}$/', trim((string) $id))) {
                throw new AdminError(AdminError::INVALID_REQUEST, 'ids must be category ids (positive numbers)');
            }
            $out[] = (int) $id;
        }
        return $out;
    }

    /** @param list<int> $ids @return list<array<string,mixed>> titles containing `$keyword`, from the first TITLE_PAGES pages */
    private function searchTitles(array $ids, string $keyword): array
    {
        if ($ids === []) {
            return [];
        }
        $found = [];
        for ($page = 0, $start = 0; $page < self::TITLE_PAGES; $page++, $start += 30) {
            $a = $this->wechat('GET', '/wxaapi/newtmpl/getpubtemplatetitles?' . http_build_query(['ids' => implode(',', $ids), 'start' => $start, 'limit' => 30]));
            foreach ($a['data'] ?? [] as $t) {
                if (str_contains((string) ($t['title'] ?? ''), $keyword)) {
                    $found[] = $t;
                }
            }
            if ($start + 30 >= (int) ($a['count'] ?? 0)) {
                break;
            }
        }
        return $found;
    }

    private function onMessage(callable $call, int $id): void
    {
        try {
            $call();
        } catch (Exception\InvalidArgumentException $e) {
            throw new AdminError(AdminError::UNKNOWN_MESSAGE, "outbox message $id cannot be changed: " . $e->getMessage(), [], ['id' => $id], $e);
        }
    }

    private static function messageId(mixed $id): int
    {
        if (!is_int($id) || $id < 1) {
            throw new AdminError(AdminError::INVALID_REQUEST, 'id must be an outbox message id (1 or more)');
        }
        return $id;
    }

    /** @param array<string,mixed> $q */
    private static function intIn(array $q, string $key, int $default, int $min, int $max): int
    {
        $v = $q[$key] ?? $default;
        if (is_string($v) && preg_match('/^\d{1,9}$/', $v)) {
            $v = (int) $v;
        }
        if (!is_int($v) || $v < $min || $v > $max) {
            throw new AdminError(AdminError::INVALID_REQUEST, "$key must be a number from $min to $max");
        }
        return $v;
    }

    private static function chars(string $s): int
    {
        return (int) preg_match_all('/./us', $s);
    }

    /**
     * The problems in a library mapping message ("mapping document for wx… has 2
     * problems: events.x.data.thing3: unknown field; …"), each with its JSON path.
     *
     * @return list<array{path:string,message:string,severity:string}>
     */
    public static function problemsOf(string $message): array
    {
        // The library names the call first ("render: …", "load_mappings: …").
        $message = (string) preg_replace('/^(?:render|load_mappings|enqueue|send): /', '', $message);
        $list = preg_match('/ has \d+ problems?: (.*)$/s', $message, $m) ? $m[1] : $message;
        $problems = [];
        foreach (preg_split('/; (?=[A-Za-z_(][^:;]*: )/', $list) ?: [] as $part) {
            if (preg_match('/^event (\w+), (?:keyword (\w+)|(page))[^:]*: (.*)$/s', $part, $p)) {
                $path = "events.{$p[1]}." . ($p[2] !== '' ? "data.{$p[2]}" : 'page');
                $problems[] = ['path' => $path, 'message' => $p[4], 'severity' => 'error'];
            } elseif (preg_match('/^([A-Za-z_][\w.\[\]-]*|\(document\)): (.*)$/s', $part, $p)) {
                $problems[] = ['path' => $p[1] === '(document)' ? '' : $p[1], 'message' => $p[2], 'severity' => 'error'];
            } elseif (trim($part) !== '') {
                $problems[] = ['path' => '', 'message' => trim($part), 'severity' => 'error'];
            }
        }
        return $problems;
    }

    private static function lastProblem(string $message): string
    {
        $p = self::problemsOf($message);
        return $p === [] ? $message : implode('; ', array_map(fn ($x) => $x['message'], $p));
    }
}
