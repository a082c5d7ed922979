<?php
declare(strict_types=1);

namespace FaShop\Notify;

/** The library's status codes, equal to the C enum `FashopNotifyStatus` (a test checks). */
final class Status
{
    public const OK = 0;
    public const INVALID_ARGUMENT = 1;
    public const APP_NOT_CONFIGURED = 2;
    public const MAPPING_ERROR = 3;
    public const NO_PERMIT = 4;
    public const WECHAT_ERROR = 5;
    public const NETWORK_ERROR = 6;
    public const UNCERTAIN = 7;
    public const STORE_ERROR = 8;
    public const INTERNAL = 9;

    /** @return array<string,int> name => value, as in the C header */
    public static function all(): array
    {
        return (new \ReflectionClass(self::class))->getConstants();
    }
}
