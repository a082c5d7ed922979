<?php
declare(strict_types=1);

namespace FaShop\Notify;

use FaShop\Notify\Admin\AdminError;

/**
 * The mini program's two routes for subscribe grants, with no tie to a web server
 * (method, path, query, body and headers in; status, headers and body out):
 *
 *   GET  …/templates?moment=after_payment   the template ids to ask for at that moment
 *   POST …/grants  {"subscribe": {"<tmplId>": "accept", …}, "form_ids": […]}   what the buyer answered
 *
 * The buyer is whoever the shop's session says (the `X-Shop-Session` header, resolved by
 * the shop's callable to the openid of `fa_user_open.mini_openid`), never a value of the
 * request body. bindings/miniprogram is the client of these routes.
 */
final class GrantEndpoint
{
    public const SESSION_HEADER = 'X-Shop-Session';
    /** Grant reports are one tap's answers: a few hundred bytes. */
    public const MAX_BODY_BYTES = 16384;

    /**
     * When the mini program asks, and for which events. After wx.requestPayment succeeds
     * the buyer has just tapped "pay": one panel for the payment, shipping and refund
     * notices (3 templates, WeChat's limit per call).
     */
    public const MOMENTS = [
        'after_payment' => ['order_pay_success', 'order_delivered', 'order_refund_apply'],
        'checkout' => ['order_pay_success', 'order_pay_fail', 'order_cancel'],
        'order_page' => ['order_delivered', 'order_refund_apply', 'order_cancel'],
    ];

    /** @var callable(string): ?string */
    private $openidOf;

    /**
     * @param callable(string): ?string $openidOf the buyer's openid for a session token (null: no such session)
     * @param array<string,list<string>> $moments moment => events (MOMENTS by default)
     */
    public function __construct(private Admin $admin, callable $openidOf, private array $moments = self::MOMENTS)
    {
        $this->openidOf = $openidOf;
    }

    /**
     * @param array<string,mixed> $query
     * @param array<string,string> $headers header name (any case) => value
     * @return array{status:int,headers:array<string,string>,body:string}
     */
    public function handle(string $method, string $path, array $query, string $body, array $headers): array
    {
        $route = basename(rtrim($path, '/'));
        $result = match (true) {
            $route === 'templates' && $method === 'GET' => $this->templates((string) ($query['moment'] ?? '')),
            $route === 'grants' && $method === 'POST' => $this->grants($body, $headers),
            $route === 'templates', $route === 'grants' => (new AdminError(AdminError::METHOD_NOT_ALLOWED, "/$route takes " . ($route === 'grants' ? 'POST' : 'GET')))->toResult(),
            default => (new AdminError(AdminError::NOT_FOUND, "no grant route /$route"))->toResult(),
        };
        return [
            'status' => Admin::httpStatus($result),
            'headers' => ['Content-Type' => 'application/json; charset=utf-8', 'Cache-Control' => 'no-store', 'X-Content-Type-Options' => 'nosniff'],
            'body' => json_encode($result, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR),
        ];
    }

    private function templates(string $moment): array
    {
        $events = $this->moments[$moment] ?? null;
        if ($events === null) {
            $known = implode(', ', array_keys($this->moments));
            return (new AdminError(AdminError::INVALID_REQUEST, "unknown moment \"$moment\": the moments are $known"))->toResult();
        }
        $answer = $this->admin->askTemplates($events);
        if ($answer['ok']) {
            $answer['data']['moment'] = $moment;
        }
        return $answer;
    }

    /** @param array<string,string> $headers */
    private function grants(string $body, array $headers): array
    {
        $token = '';
        foreach ($headers as $name => $value) {
            if (strcasecmp($name, self::SESSION_HEADER) === 0) {
                $token = (string) $value;
            }
        }
        $openid = $token === '' ? null : ($this->openidOf)($token);
        if ($openid === null || $openid === '') {
            return (new AdminError(AdminError::UNAUTHORIZED, 'no buyer session: log in first (' . self::SESSION_HEADER . ')'))->toResult();
        }
        $input = strlen($body) <= self::MAX_BODY_BYTES ? json_decode($body, true) : null;
        if (!is_array($input)) {
            return (new AdminError(AdminError::INVALID_REQUEST, 'the body must be a JSON object of at most 16 KiB'))->toResult();
        }
        return $this->admin->collectGrants($openid, $input);
    }
}
