<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** WeChat could not be reached; the message was not delivered and the permit was given back. */
class NetworkException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;
}
