<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** NULL, not UTF-8, malformed JSON, unknown or missing field, value out of range. */
class InvalidArgumentException extends \InvalidArgumentException implements NotifyException
{
    use CarriesStatus;
}
