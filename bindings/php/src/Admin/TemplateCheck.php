<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/**
 * The library's knowledge of WeChat templates that the admin asks for: a mapping
 * document checked against the app's live templates, and the keyword types with
 * their rules. Null from either means this build of the library cannot answer;
 * the admin then says so instead of guessing.
 */
interface TemplateCheck
{
    /**
     * Problems of `$documentJson` against the app's templates, each
     * `['path' => 'events.order_pay_success.data.thing3', 'message' => '…', 'severity' => 'error'|'warning']`;
     * null when the check is not available. The app's template list may come from a
     * short-lived cache; `$refresh` reads it again.
     *
     * @return list<array{path:string,message:string,severity:string}>|null
     */
    public function check(string $appid, string $documentJson, bool $refresh = false): ?array;

    /**
     * The keyword types, keyed by prefix (`thing`, `amount` …), each with at least
     * `label`, `max_chars` (null without a plain limit) and `rule`; null when not available.
     *
     * @return array<string,array<string,mixed>>|null
     */
    public function keywordTypes(): ?array;
}
