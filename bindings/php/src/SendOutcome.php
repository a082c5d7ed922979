<?php
declare(strict_types=1);

namespace FaShop\Notify;

/** What one send did, as the library reported it. */
final class SendOutcome
{
    /**
     * @param string $status sent | failed | uncertain | in_progress | no_permit | duplicate | queued (WeChat not reached,
     *                       kept in the outbox: payload option `on_failure` (first name `on_network_error`) = `enqueue`)
     * @param array<string,mixed>|null $permit kind and remaining uses of the permit the send used
     * @param array<string,mixed> $raw the whole outcome document
     * @param int|null $retryAfterMs when WeChat said to retry later (45011: the next minute), in how many ms
     */
    public function __construct(
        public readonly string $status,
        public readonly int $errcode,
        public readonly string $errmsg,
        public readonly ?int $msgid,
        public readonly int $attempts,
        public readonly ?array $permit,
        public readonly ?string $idempotencyKey,
        public readonly array $raw,
        public readonly ?int $retryAfterMs = null,
    ) {
    }

    /** @param array<string,mixed> $o */
    public static function fromArray(array $o): self
    {
        return new self(
            (string) ($o['status'] ?? ''),
            (int) ($o['errcode'] ?? 0),
            (string) ($o['errmsg'] ?? ''),
            isset($o['msgid']) ? (int) $o['msgid'] : null,
            (int) ($o['attempts'] ?? 0),
            isset($o['permit']) && is_array($o['permit']) ? $o['permit'] : null,
            isset($o['idempotency_key']) ? (string) $o['idempotency_key'] : null,
            $o,
            isset($o['retry_after_ms']) ? (int) $o['retry_after_ms'] : null,
        );
    }

    /**
     * What the send did with the event's service card (`notify_type`, `status`,
     * `result`: applied, duplicate, queued, stopped, refused, failed, uncertain;
     * `errcode`, `errmsg`, `outbox_id`), or null when the event has no card.
     *
     * @return array<string,mixed>|null
     */
    public function card(): ?array
    {
        return isset($this->raw['card']) && is_array($this->raw['card']) ? $this->raw['card'] : null;
    }

    /** True when the message went out now or had gone out before (duplicate). */
    public function delivered(): bool
    {
        return $this->status === 'sent' || $this->status === 'duplicate';
    }
}
