<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/**
 * An admin request that cannot be done, with its stable code (what a front end
 * switches on), an HTTP status for JSON front controllers, and for a mapping the
 * problems with their JSON paths.
 */
final class AdminError extends \RuntimeException
{
    /** The shop has no mini program configured (no appid, or the library does not know it). */
    public const MINI_PROGRAM_NOT_CONFIGURED = 'mini_program_not_configured';
    public const UNKNOWN_EVENT = 'unknown_event';
    /** A template id that is not among the app's templates, or a library tid WeChat does not know. */
    public const UNKNOWN_TEMPLATE = 'unknown_template';
    public const TEMPLATE_IN_USE = 'template_in_use';
    /** The mapping breaks the document's rules or the template's (see `problems`). */
    public const INVALID_MAPPING = 'invalid_mapping';
    public const NOT_MAPPED = 'not_mapped';
    public const UNKNOWN_ORDER = 'unknown_order';
    public const UNKNOWN_MESSAGE = 'unknown_message';
    /** A missing, mistyped or out-of-range request value. */
    public const INVALID_REQUEST = 'invalid_request';
    public const WECHAT_ERROR = 'wechat_error';
    public const WECHAT_UNREACHABLE = 'wechat_unreachable';
    public const STORE_ERROR = 'store_error';
    public const UNAUTHORIZED = 'unauthorized';
    public const NOT_FOUND = 'not_found';
    public const METHOD_NOT_ALLOWED = 'method_not_allowed';
    /** The front controller has no admin secret set: it refuses everything rather than run open. */
    public const ADMIN_NOT_CONFIGURED = 'admin_not_configured';
    public const INTERNAL = 'internal';

    private const HTTP = [
        self::MINI_PROGRAM_NOT_CONFIGURED => 409,
        self::UNKNOWN_EVENT => 404,
        self::UNKNOWN_TEMPLATE => 404,
        self::TEMPLATE_IN_USE => 409,
        self::INVALID_MAPPING => 422,
        self::NOT_MAPPED => 409,
        self::UNKNOWN_ORDER => 404,
        self::UNKNOWN_MESSAGE => 404,
        self::INVALID_REQUEST => 400,
        self::WECHAT_ERROR => 502,
        self::WECHAT_UNREACHABLE => 504,
        self::STORE_ERROR => 503,
        self::UNAUTHORIZED => 401,
        self::NOT_FOUND => 404,
        self::METHOD_NOT_ALLOWED => 405,
        self::ADMIN_NOT_CONFIGURED => 503,
        self::INTERNAL => 500,
    ];

    /**
     * @param list<array<string,mixed>> $problems
     * @param array<string,mixed> $extra more detail for the answer (errcode …)
     */
    public function __construct(
        public readonly string $errorCode,
        string $message,
        public readonly array $problems = [],
        public readonly array $extra = [],
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, 0, $previous);
    }

    public static function httpStatus(string $code): int
    {
        return self::HTTP[$code] ?? 500;
    }

    /** @return array{ok:false,error:array<string,mixed>} */
    public function toResult(): array
    {
        $error = ['code' => $this->errorCode, 'message' => $this->getMessage(), 'message_zh' => ChineseTexts::message($this->getMessage())] + $this->extra;
        if ($this->problems !== []) {
            $error['problems'] = ChineseTexts::findings($this->problems);
        }
        return ['ok' => false, 'error' => $error];
    }
}
